#!/usr/bin/env node
// Black-box check of Guichet's account lifecycle pages in a real browser: Debian's
// Chromium (/usr/bin/chromium) driven by npm `playwright-core`.
//
//   node conformance/browser_account.mjs --base http://localhost:PORT --outbox DIR \
//        [--node-dir DIR] [--chromium /usr/bin/chromium] [--shots DIR]
//   node conformance/browser_account.mjs --decode-eml FILE   (prints a decoded message)
//
// --base: a running server whose issuer is that URL (http://localhost:PORT: a secure
// context for the browser), with the file mail driver writing .eml files to --outbox.
// playwright-core is imported from node_modules next to this file if there is one, else
// from --node-dir / $GUICHET_NODE_DIR / ~/.cache/guichet-node (where conformance/run
// installs it).
//
// For each language, en then fr, in a fresh browser context whose own locale is the other
// language (so the switch is what sets it): /login -> #lang-<lang> -> #register-link ->
// register a fresh address -> the verification mail (newest .eml in the outbox addressed to
// it) -> its link -> #confirm -> #go-sign-in -> sign in -> /account -> change the password
// -> export (download, JSON with profile/sessions/consents/login_history holding the email)
// -> #delete-link -> type the email -> #deleted -> signing in with the new password fails.
// Every page must be <html lang="<lang>">; the en and fr mail subjects must differ.
// A screenshot after each step: target/browser/<lang>-<nn>-<step>.png (--shots to change).
//
// Prints `PASS name` / `FAIL name: reason` per check and ends with `N passed, M failed`;
// exits 1 if anything failed.

import { mkdirSync, readdirSync, readFileSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

import { CHROMIUM_ARGS, loadPlaywright } from './browser.mjs';
import { CheckError, ensure, fail, jsonish, pass, results, Scenario } from './checks.mjs';

const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const ACTION_TIMEOUT_MS = 15000; // one click, fill, navigation
const MAIL_WAIT_MS = 20000; // mail goes out from a queue, retried with backoff
const LANGS = ['en', 'fr'];
const OTHER = { en: 'fr-FR', fr: 'en-US' }; // the browser's own locale in each run

// ---------------------------------------------------------------- arguments
function parseArgs(argv) {
  const opts = {};
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const m = /^--([a-z-]+)(?:=(.*))?$/.exec(a);
    if (!m) throw new Error(`unexpected argument ${JSON.stringify(a)}`);
    if (m[2] !== undefined) opts[m[1]] = m[2];
    else if (i + 1 < argv.length) opts[m[1]] = argv[++i];
    else throw new Error(`--${m[1]} needs a value`);
  }
  if (opts['decode-eml']) return opts;
  for (const k of ['base', 'outbox']) {
    if (!opts[k]) throw new Error(`missing --${k} (usage: --base URL --outbox DIR [--node-dir DIR] [--chromium PATH] [--shots DIR])`);
  }
  opts.base = opts.base.replace(/\/+$/, '');
  return opts;
}

// ---------------------------------------------------------------- results
function describe(e) {
  if (!(e instanceof Error)) return jsonish(e);
  // Playwright's messages carry a call log over several lines; the first ones say enough.
  const msg = e.name === 'CheckError' ? e.message : e.message.split('\n').slice(0, 4).join(' | ');
  return `${e.name}: ${msg}`;
}

// ---------------------------------------------------------------- RFC 5322 / MIME
// Enough of a decoder for Guichet's mail: folded headers, RFC 2047 encoded words,
// nested multiparts, quoted-printable / base64 / 7bit / 8bit bodies, any charset the
// runtime's TextDecoder knows.

function decodeBytes(buf, charset) {
  try {
    return new TextDecoder((charset || 'utf-8').trim().toLowerCase()).decode(buf);
  } catch {
    return new TextDecoder('utf-8').decode(buf);
  }
}

/** Quoted-printable (RFC 2045 6.7), on a byte string (latin1), to bytes. */
function decodeQuotedPrintable(s) {
  const bytes = s
    .replace(/[ \t]+(?=\r?\n|$)/g, '') // trailing whitespace was added in transport
    .replace(/=\r?\n/g, '') // soft line breaks
    .replace(/=([0-9A-Fa-f]{2})/g, (_, h) => String.fromCharCode(parseInt(h, 16)));
  return Buffer.from(bytes, 'latin1');
}

/** RFC 2047 encoded words; adjacent ones of one charset are joined before decoding. */
function decodeWords(value) {
  const re = /=\?([^?\s]+)\?([bBqQ])\?([^?\s]*)\?=/g;
  let out = '';
  let last = 0;
  let pending = null; // { charset, bytes: [] }
  const flush = () => {
    if (pending) out += decodeBytes(Buffer.concat(pending.bytes), pending.charset);
    pending = null;
  };
  let m;
  while ((m = re.exec(value))) {
    const between = value.slice(last, m.index);
    const charset = m[1].split('*')[0].toLowerCase(); // RFC 2231 language suffix
    const bytes =
      m[2].toUpperCase() === 'B'
        ? Buffer.from(m[3], 'base64')
        : Buffer.from(m[3].replace(/_/g, ' ').replace(/=([0-9A-Fa-f]{2})/g, (_, h) => String.fromCharCode(parseInt(h, 16))), 'latin1');
    const onlySpace = /^[ \t\r\n]*$/.test(between);
    if (pending && onlySpace && pending.charset === charset) {
      pending.bytes.push(bytes);
    } else {
      const had = pending !== null;
      flush();
      if (!(had && onlySpace)) out += between; // space between encoded words is not text
      pending = { charset, bytes: [bytes] };
    }
    last = re.lastIndex;
  }
  flush();
  return out + value.slice(last);
}

/** `type/sub; a=b; c="d"` -> { value: 'type/sub', params: { a: 'b', c: 'd' } } */
function parseParams(v) {
  const semi = v.indexOf(';');
  const value = (semi < 0 ? v : v.slice(0, semi)).trim().toLowerCase();
  const params = {};
  const re = /;\s*([^\s=;]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^;\s]*))/g;
  let m;
  while ((m = re.exec(v))) {
    params[m[1].toLowerCase()] = m[2] !== undefined ? m[2].replace(/\\(.)/g, '$1') : m[3];
  }
  return { value, params };
}

/** One entity (a whole message or a body part) from a byte string (latin1). */
function parseEntity(s) {
  let head = '';
  let body = s;
  if (!/^\r?\n/.test(s)) {
    const m = /\r?\n\r?\n/.exec(s);
    head = m ? s.slice(0, m.index) : s;
    body = m ? s.slice(m.index + m[0].length) : '';
  } else {
    body = s.replace(/^\r?\n/, '');
  }
  const headers = [];
  for (const line of head.replace(/\r?\n(?=[ \t])/g, '').split(/\r?\n/)) {
    const colon = line.indexOf(':');
    if (colon <= 0) continue;
    const raw = Buffer.from(line.slice(colon + 1).trim(), 'latin1').toString('utf8'); // 8-bit headers: UTF-8
    headers.push([line.slice(0, colon).trim().toLowerCase(), decodeWords(raw)]);
  }
  const header = (name) => headers.find(([n]) => n === name)?.[1];
  const ctype = parseParams(header('content-type') || 'text/plain; charset=us-ascii');
  const entity = { headers, header, type: ctype.value, params: ctype.params, children: [] };
  if (ctype.value.startsWith('multipart/') && ctype.params.boundary) {
    const b = ctype.params.boundary.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
    const delim = new RegExp(`(?:^|\\r?\\n)--${b}(--)?[ \\t]*(?:\\r?\\n|$)`, 'g');
    let start = null;
    let m;
    while ((m = delim.exec(body))) {
      if (start !== null) entity.children.push(parseEntity(body.slice(start, m.index)));
      if (m[1]) break; // close delimiter; the epilogue is ignored
      start = delim.lastIndex;
    }
  } else {
    const cte = (header('content-transfer-encoding') || '7bit').trim().toLowerCase();
    let bytes;
    if (cte === 'base64') bytes = Buffer.from(body.replace(/[^A-Za-z0-9+/=]/g, ''), 'base64');
    else if (cte === 'quoted-printable') bytes = decodeQuotedPrintable(body);
    else bytes = Buffer.from(body, 'latin1');
    entity.cte = cte;
    entity.bytes = bytes;
    if (ctype.value.startsWith('text/')) entity.text = decodeBytes(bytes, ctype.params.charset);
  }
  return entity;
}

function mimeTree(e) {
  return e.children.length ? `${e.type}(${e.children.map(mimeTree).join(', ')})` : `${e.type}[${e.cte}]`;
}

/** A message: headers, subject, recipients, the MIME tree and its text leaves. */
function parseEml(buf) {
  const root = parseEntity(Buffer.isBuffer(buf) ? buf.toString('latin1') : buf);
  const leaves = [];
  const walk = (e) => (e.children.length ? e.children.forEach(walk) : leaves.push(e));
  walk(root);
  const alternative = [];
  const findAlt = (e) => {
    if (e.type === 'multipart/alternative' && !alternative.length) alternative.push(...e.children.map((c) => c.type));
    e.children.forEach(findAlt);
  };
  findAlt(root);
  const textOf = (type) => leaves.find((l) => l.type === type && l.text !== undefined)?.text;
  return {
    subject: root.header('subject') ?? '',
    from: root.header('from') ?? '',
    to: root.headers.filter(([n]) => n === 'to' || n === 'cc').map(([, v]) => v).join(', '),
    date: root.header('date') ?? '',
    messageId: root.header('message-id') ?? '',
    structure: mimeTree(root),
    alternative, // the content types of the first multipart/alternative's children
    text: textOf('text/plain'),
    html: textOf('text/html'),
    parts: leaves.map((l) => ({ type: l.type, charset: l.params.charset, cte: l.cte, text: l.text })),
  };
}

const NAMED_ENTITIES = { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'", nbsp: '\u00a0' };

function htmlUnescape(s) {
  return s.replace(/&(#[xX][0-9a-fA-F]+|#[0-9]+|[a-zA-Z]+);/g, (m, ent) => {
    if (ent[0] === '#') {
      const cp = ent[1] === 'x' || ent[1] === 'X' ? parseInt(ent.slice(2), 16) : parseInt(ent.slice(1), 10);
      return Number.isFinite(cp) && cp <= 0x10ffff ? String.fromCodePoint(cp) : m;
    }
    return Object.hasOwn(NAMED_ENTITIES, ent) ? NAMED_ENTITIES[ent] : m;
  });
}

// ---------------------------------------------------------------- the outbox
function emlFiles(dir) {
  let names;
  try {
    names = readdirSync(dir, { recursive: true });
  } catch (e) {
    if (e.code === 'ENOENT') return [];
    throw e;
  }
  const files = [];
  for (const name of names) {
    if (!String(name).endsWith('.eml')) continue;
    const path = join(dir, String(name));
    try {
      const st = statSync(path);
      if (st.isFile()) files.push({ path, mtime: st.mtimeMs });
    } catch {
      // removed meanwhile
    }
  }
  return files;
}

/** Waits for the newest .eml addressed to `address` that has a text part; its parse and path. */
async function waitForMail(dir, address, timeoutMs) {
  const deadline = Date.now() + timeoutMs;
  const want = address.toLowerCase();
  let seen = 0;
  for (;;) {
    const files = emlFiles(dir).sort((a, b) => b.mtime - a.mtime);
    seen = files.length;
    for (const f of files) {
      let mail;
      try {
        mail = parseEml(readFileSync(f.path));
      } catch {
        continue; // being written
      }
      if (!mail.to.toLowerCase().includes(want)) continue;
      if (mail.text === undefined && mail.html === undefined) continue; // being written
      return { ...mail, path: f.path };
    }
    if (Date.now() >= deadline) {
      throw new CheckError(`no .eml addressed to ${address} in ${dir} after ${timeoutMs / 1000} s (${seen} .eml file(s) there)`);
    }
    await new Promise((r) => setTimeout(r, 250));
  }
}

function linksIn(text, prefix) {
  if (!text) return [];
  const re = new RegExp(`${prefix.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}[^\\s"'<>]+`, 'g');
  return htmlUnescape(text).match(re) ?? [];
}

// ---------------------------------------------------------------- one language
async function lifecycle(browser, opts, lang, mailSubjects) {
  const BASE = opts.base;
  const run = `${process.pid}-${Date.now().toString(36)}`;
  const address = `browser-${lang}-${run}@example.com`;
  const password = `first-${lang}-${run}`;
  const newPassword = `second-${lang}-${run}`;
  const shotsDir = opts.shots;
  let shotNo = 0;
  let context = null;
  let page = null;

  const pageState = async () => {
    const info = await page.evaluate(() => ({
      lang: document.documentElement.lang,
      error: [...document.querySelectorAll('.error, [role=alert]')].map((e) => e.textContent.trim()).join(' / '),
      text: document.body ? document.body.innerText.replace(/\s+/g, ' ').trim().slice(0, 200) : '',
    }));
    return `page ${page.url()} lang=${jsonish(info.lang)}${info.error ? ` error=${jsonish(info.error)}` : ''} text=${jsonish(info.text)}`;
  };

  const s = new Scenario(lang, { describe, onBlocked: async (stepName) => {
    if (!page) return 'no page';
    const state = await pageState();
    const file = join(shotsDir, `${lang}-failed-${stepName.replace(/[^a-z0-9]+/gi, '-').replace(/^-|-$/g, '')}.png`);
    await page.screenshot({ path: file, fullPage: true, timeout: 5000 });
    return `${state}; screenshot ${file}`;
  } });

  const shot = async (name) => {
    shotNo++;
    const file = join(shotsDir, `${lang}-${String(shotNo).padStart(2, '0')}-${name}.png`);
    try {
      await page.screenshot({ path: file, fullPage: true });
    } catch (e) {
      fail(`${lang}: screenshot ${file}`, describe(e));
    }
  };

  /** Runs `action` (a click that leads somewhere) and waits for the page it leads to. */
  const navigate = async (action) => {
    const nav = page.waitForNavigation({ waitUntil: 'load', timeout: ACTION_TIMEOUT_MS });
    nav.catch(() => {}); // reported through the await below (or the action's own error)
    await action();
    const resp = await nav;
    return resp;
  };

  /** After arriving on a page: its <html lang> is this run's language; then a screenshot. */
  const arrived = async (label) => {
    await s.check(`${label}: <html lang="${lang}">`, async () => {
      const got = await page.getAttribute('html', 'lang');
      ensure(got === lang, `lang ${jsonish(got)} on ${page.url()}`);
    });
    await shot(label.replace(/[^a-z0-9]+/gi, '-'));
  };

  const visible = async (selector) => {
    await page.locator(selector).first().waitFor({ state: 'visible', timeout: ACTION_TIMEOUT_MS });
  };

  const path = () => new URL(page.url()).pathname;

  try {
    context = await s.step('new browser context', async () => {
      const c = await browser.newContext({
        locale: OTHER[lang],
        acceptDownloads: true,
        viewport: { width: 1000, height: 800 },
      });
      c.setDefaultTimeout(ACTION_TIMEOUT_MS);
      c.setDefaultNavigationTimeout(ACTION_TIMEOUT_MS);
      page = await c.newPage();
      return c;
    });
    console.log(`   ${lang}: ${address} (browser locale ${OTHER[lang]})`);

    // ---- language
    await s.step('GET /login', async () => {
      const r = await page.goto(`${BASE}/login`, { waitUntil: 'load' });
      ensure(r && r.status() === 200, `status ${r?.status()}`);
      console.log(`   ${lang}: /login first shown with lang=${jsonish(await page.getAttribute('html', 'lang'))}`);
    });
    await s.check(`#lang-en and #lang-fr link to /lang?lang=...`, async () => {
      for (const l of LANGS) {
        const href = await page.getAttribute(`#lang-${l}`, 'href', { timeout: 2000 });
        ensure(href !== null, `no #lang-${l}`);
        const u = new URL(href, page.url());
        ensure(u.pathname === '/lang' && u.searchParams.get('lang') === l, `#lang-${l} href ${jsonish(href)}`);
      }
    });
    await s.step(`click #lang-${lang}: back on /login`, async () => {
      await navigate(() => page.click(`#lang-${lang}`));
      ensure(path() === '/login', `now on ${page.url()}`);
    });
    await arrived('login-lang');

    // ---- register
    await s.step('#register-link -> /register', async () => {
      await navigate(() => page.click('#register-link'));
      ensure(path() === '/register', `now on ${page.url()}`);
      await visible('#register-form');
    });
    await arrived('register');
    await s.step('fill and submit #register-form -> #register-sent', async () => {
      await page.fill('#name', `Browser ${lang.toUpperCase()}`);
      await page.fill('#email', address);
      await page.fill('#password', password);
      await page.check('#accept_terms');
      if (lang === 'fr') await page.check('#newsletter'); // one run with, one without
      await navigate(() => page.click('#register'));
      await visible('#register-sent');
    });
    await arrived('register-sent');

    // ---- verification mail
    const mail = await s.step(`verification mail in the outbox within ${MAIL_WAIT_MS / 1000} s`, () =>
      waitForMail(opts.outbox, address, MAIL_WAIT_MS),
    );
    if (mail) {
      console.log(`   ${lang}: mail ${mail.path}: Subject ${jsonish(mail.subject)}; MIME ${mail.structure}`);
      mailSubjects[lang] = mail.subject;
    }
    await s.check('mail: subject set, multipart/alternative with text/plain and text/html', () => {
      ensure(mail.subject.trim() !== '', 'empty Subject');
      ensure(mail.alternative.includes('text/plain') && mail.alternative.includes('text/html'), `MIME ${mail.structure}`);
    });
    const prefix = `${BASE}/register/verify?token=`;
    const link = await s.step(`mail: text part links ${prefix}...`, () => {
      const found = linksIn(mail.text, prefix);
      ensure(found.length > 0, `no such link in the text part: ${jsonish((mail.text ?? '').slice(0, 500))}`);
      return found[0];
    });
    await s.check('mail: the HTML part links the same token', () => {
      const token = (u) => new URL(u).searchParams.get('token');
      const found = linksIn(mail.html, prefix);
      ensure(found.some((u) => token(u) === token(link)), `HTML links ${jsonish(found)}, text link ${jsonish(link)}`);
    });

    // ---- verify
    await s.step('open the link: #confirm', async () => {
      const r = await page.goto(link, { waitUntil: 'load' });
      ensure(r && r.status() === 200, `status ${r?.status()}`);
      await visible('#confirm');
    });
    await arrived('verify');
    await s.step('click #confirm -> #verified', async () => {
      await navigate(() => page.click('#confirm'));
      await visible('#verified');
    });
    await arrived('verified');
    await s.step('#go-sign-in -> /login', async () => {
      await navigate(() => page.click('#go-sign-in'));
      ensure(path() === '/login', `now on ${page.url()}`);
    });
    await arrived('login');

    // ---- sign in
    await s.step('sign in -> /account showing the email', async () => {
      await page.fill('#email', address);
      await page.fill('#password', password);
      await navigate(() => page.click('#sign-in'));
      ensure(path() === '/account', `now on ${page.url()}`);
      await visible('#account');
      const shown = await page.textContent('#account');
      ensure(shown.includes(address), `#account shows ${jsonish(shown.trim().slice(0, 200))}`);
    });
    await arrived('account');

    // ---- change the password
    await s.step('#password-form: change the password -> #notice', async () => {
      await page.fill('#password-form [name="current_password"]', password);
      await page.fill('#password-form [name="password"]', newPassword);
      await navigate(() => page.click('#change-password'));
      await visible('#notice');
    });
    await arrived('password-changed');

    // ---- export
    // Not blocking: a broken export should not hide what the deletion does.
    const exported = await s.check('#export downloads a JSON file', async () => {
      if (path() !== '/account') await page.goto(`${BASE}/account`, { waitUntil: 'load' });
      const [download] = await Promise.all([
        page.waitForEvent('download', { timeout: ACTION_TIMEOUT_MS }),
        page.click('#export'),
      ]);
      const failure = await download.failure();
      ensure(failure === null, `download failed: ${failure}`);
      const file = await download.path();
      const text = readFileSync(file, 'utf8');
      let json;
      try {
        json = JSON.parse(text);
      } catch (e) {
        throw new CheckError(`${download.suggestedFilename()} is not JSON (${e.message}): ${jsonish(text.slice(0, 300))}`);
      }
      writeFileSync(join(shotsDir, `${lang}-export.json`), `${JSON.stringify(json, null, 2)}\n`);
      console.log(`   ${lang}: downloaded ${jsonish(download.suggestedFilename())}, top-level keys ${jsonish(Object.keys(json))}`);
      return json;
    });
    await shot('exported');
    await s.check('export: top-level keys profile, sessions, consents, login_history', () => {
      ensure(exported !== undefined, 'no export to read (the download failed)');
      ensure(exported && typeof exported === 'object' && !Array.isArray(exported), `not an object: ${jsonish(exported)?.slice(0, 200)}`);
      const missing = ['profile', 'sessions', 'consents', 'login_history'].filter((k) => !(k in exported));
      ensure(missing.length === 0, `missing ${jsonish(missing)}; keys ${jsonish(Object.keys(exported))}`);
    });
    await s.check('export: profile holds the email', () => {
      ensure(exported !== undefined, 'no export to read (the download failed)');
      ensure(JSON.stringify(exported?.profile ?? null).includes(address), `profile ${jsonish(exported?.profile)?.slice(0, 300)}`);
    });
    await s.check('export: GET /account/export is an attachment with a JSON content type', async () => {
      const r = await context.request.get(`${BASE}/account/export`, { maxRedirects: 0 });
      const disposition = r.headers()['content-disposition'] ?? '';
      const type = r.headers()['content-type'] ?? '';
      ensure(r.status() === 200, `status ${r.status()}`);
      ensure(/^\s*attachment\b/i.test(disposition), `Content-Disposition ${jsonish(disposition)}`);
      ensure(/json/i.test(type), `Content-Type ${jsonish(type)}`);
    });

    // ---- delete
    await s.step('#delete-link -> /account/delete', async () => {
      if (path() !== '/account') await page.goto(`${BASE}/account`, { waitUntil: 'load' });
      await navigate(() => page.click('#delete-link'));
      ensure(path() === '/account/delete', `now on ${page.url()}`);
    });
    await arrived('delete');
    await s.step('type the email, #delete-account -> #deleted', async () => {
      await page.fill('[name="confirm_email"]', address);
      await navigate(() => page.click('#delete-account'));
      await visible('#deleted');
    });
    await arrived('deleted');

    // ---- the account is gone
    await s.step('signing in with the new password now fails (.error on /login)', async () => {
      await page.goto(`${BASE}/login`, { waitUntil: 'load' });
      ensure(path() === '/login', `GET /login went to ${page.url()}`);
      await page.fill('#email', address);
      await page.fill('#password', newPassword);
      await navigate(() => page.click('#sign-in'));
      ensure(path() === '/login', `now on ${page.url()}`);
      await visible('.error');
      ensure((await page.locator('#account').count()) === 0, 'the page shows #account');
    });
    await arrived('login-refused');
  } finally {
    if (context) await context.close().catch(() => {});
  }
}

// ---------------------------------------------------------------- main
async function main() {
  const opts = parseArgs(process.argv.slice(2));
  if (opts['decode-eml']) {
    console.log(JSON.stringify(parseEml(readFileSync(opts['decode-eml'])), null, 2));
    return;
  }
  opts.shots = resolve(opts.shots || join(REPO_ROOT, 'target', 'browser'));
  mkdirSync(opts.shots, { recursive: true });
  for (const name of readdirSync(opts.shots)) {
    if (/^(en|fr)-(\d\d-.*\.png|failed-.*\.png|export\.json)$/.test(name)) unlinkSync(join(opts.shots, name));
  }
  const executablePath = opts.chromium || '/usr/bin/chromium';

  const chromium = await loadPlaywright(opts);
  let browser = null;
  try {
    browser = await chromium.launch({ executablePath, headless: true, args: CHROMIUM_ARGS, timeout: 60000 });
    pass(`launch ${executablePath} (Chromium ${browser.version()}) through playwright-core`);
  } catch (e) {
    fail(`launch ${executablePath} through playwright-core`, describe(e));
    return;
  }
  console.log(`   base ${opts.base}; outbox ${opts.outbox}; screenshots in ${opts.shots}`);
  const mailSubjects = {};
  try {
    for (const lang of LANGS) {
      console.log(`-- ${lang}`);
      try {
        await lifecycle(browser, opts, lang, mailSubjects);
      } catch (e) {
        fail(`${lang}: scenario crashed`, `${describe(e)}${e?.stack ? ` ${e.stack.split('\n').slice(1, 3).join(' ')}` : ''}`);
      }
    }
    console.log('-- both languages');
    if (mailSubjects.en !== undefined && mailSubjects.fr !== undefined) {
      if (mailSubjects.en !== mailSubjects.fr) pass(`verification mail subjects differ: en ${jsonish(mailSubjects.en)}, fr ${jsonish(mailSubjects.fr)}`);
      else fail('verification mail subjects differ between en and fr', `both ${jsonish(mailSubjects.en)}`);
    } else {
      fail('verification mail subjects differ between en and fr', `not run: no mail read for ${LANGS.filter((l) => mailSubjects[l] === undefined).join(', ')}`);
    }
  } finally {
    await browser.close().catch(() => {});
  }
}

let crashed = false;
try {
  await main();
} catch (e) {
  crashed = true;
  fail('browser_account.mjs', `crashed: ${describe(e)}${e?.stack ? ` ${e.stack.split('\n').slice(1, 4).join(' ')}` : ''}`);
}
if (!process.argv.includes('--decode-eml') || crashed) console.log(`${results.passed} passed, ${results.failed} failed`);
process.exitCode = results.failed || crashed ? 1 : 0;
