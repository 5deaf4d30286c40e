#!/usr/bin/env node
// The organization admin pages and their branding in a real browser: Debian's Chromium
// (/usr/bin/chromium) driven by npm `playwright-core`.
//
//   node conformance/browser_orgs.mjs --base http://localhost:PORT --bin PATH --db sqlite://FILE \
//        --keys DIR --outbox DIR [--node-dir DIR] [--chromium /usr/bin/chromium] [--shots DIR]
//
// --base: a running server whose issuer is that URL, with the file mail driver writing .eml
// files to --outbox; --bin/--db/--keys: the `guichet` CLI against the same database and keys.
// Set-up with the CLI: admin@acme.example owning org `acme` ("Acme Corp"), boss@globex.example
// owning org `globex`, a first-party client (redirect http://127.0.0.1:9/cb) with permissions
// orders:read and billing:manage. Then, in Chromium, as the Acme admin:
//  1. /login -> /orgs -> /orgs/acme: the overview and its nav (members, roles, domains, settings);
//  2. settings: a too-light accent (#ffee00) refused (4xx, message, nothing saved); #7a1f5c saved;
//     a 16x16 PNG logo uploaded; on the settings page and /account, #org-brand shows the logo
//     loaded and buttons wear rgb(122, 31, 92); an SVG logo refused with a message;
//  3. members: invite new@acme.example as admin -> the mail in the outbox -> accepted in a fresh
//     context (account created, signed in) -> listed as admin; role changed to member; a role
//     `buyer` (orders:read) made on /orgs/acme/roles and granted, shown on the member's row;
//  4. domains: acme.test added -> _guichet-challenge.acme.test, a value, pending;
//  5. /orgs/globex, /orgs/globex/members, /orgs/globex/settings: 404 for the Acme admin;
//  6. throughout: no request leaves the server's origin (but the final redirect to the client)
//     and no Content Security Policy violation;
//  7. the admin also a member of globex: /authorize (scope openid org, PKCE S256) shows the
//     chooser with #org-acme and #org-globex; #org-globex -> http://127.0.0.1:9/cb?code=..&state=s;
//  8. #lang-fr on an org page: <html lang="fr"> and French headings.
// Screenshots: target/browser/orgs-<nn>-<step>.png (--shots to change).
// Prints `PASS name` / `FAIL name: reason` per check and ends with `N passed, M failed`;
// exits 1 if anything failed.

import { execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { deflateSync } from 'node:zlib';

import { CHROMIUM_ARGS, loadPlaywright, parseArgs } from './browser.mjs';
import { CheckError, ensure, fail, jsonish, pass, results, Scenario } from './checks.mjs';

const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const TIMEOUT = 15000; // one click, fill, navigation
const MAIL_WAIT_MS = 20000; // mail goes out from a queue, retried with backoff
const REDIRECT_URI = 'http://127.0.0.1:9/cb';
const ACCENT = '#7a1f5c';
const ACCENT_RGB = 'rgb(122, 31, 92)';
const ADMIN = 'admin@acme.example';
const GLOBEX_ADMIN = 'boss@globex.example';
const INVITEE = 'new@acme.example';
const DOMAIN = 'acme.test';

function describe(e) {
  if (!(e instanceof Error)) return jsonish(e);
  const msg = e.name === 'CheckError' ? e.message : e.message.split('\n').slice(0, 4).join(' | ');
  return `${e.name}: ${msg}`;
}

// ---------------------------------------------------------------- images
const CRC_TABLE = Array.from({ length: 256 }, (_, n) => {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  return c >>> 0;
});

function crc32(buf) {
  let c = 0xffffffff;
  for (const b of buf) c = CRC_TABLE[(c ^ b) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

function pngChunk(type, data) {
  const len = Buffer.alloc(4);
  len.writeUInt32BE(data.length);
  const body = Buffer.concat([Buffer.from(type, 'latin1'), data]);
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(body));
  return Buffer.concat([len, body, crc]);
}

/** A valid size x size RGB PNG: a square of `rgb` with a white diagonal. */
function makePng(size, [r, g, b]) {
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(size, 0);
  ihdr.writeUInt32BE(size, 4);
  ihdr[8] = 8; // bit depth
  ihdr[9] = 2; // truecolour
  const raw = Buffer.alloc(size * (1 + size * 3));
  for (let y = 0; y < size; y++) {
    const row = y * (1 + size * 3);
    raw[row] = 0; // filter: none
    for (let x = 0; x < size; x++) {
      const px = x === y ? [255, 255, 255] : [r, g, b];
      raw.set(px, row + 1 + x * 3);
    }
  }
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    pngChunk('IHDR', ihdr),
    pngChunk('IDAT', deflateSync(raw)),
    pngChunk('IEND', Buffer.alloc(0)),
  ]);
}

const SVG = '<svg xmlns="http://www.w3.org/2000/svg" width="16" height="16"><rect width="16" height="16" fill="#7a1f5c"/></svg>\n';

// ---------------------------------------------------------------- the outbox (.eml)
function decodeQuotedPrintable(s) {
  const bytes = s
    .replace(/[ \t]+(?=\r?\n|$)/g, '')
    .replace(/=\r?\n/g, '')
    .replace(/=([0-9A-Fa-f]{2})/g, (_, h) => String.fromCharCode(parseInt(h, 16)));
  return Buffer.from(bytes, 'latin1');
}

/** Headers (lower-case names, unfolded) and the text of every leaf part, decoded. */
function parseEntity(s) {
  const m = /\r?\n\r?\n/.exec(s);
  const head = m ? s.slice(0, m.index) : s;
  const body = m ? s.slice(m.index + m[0].length) : '';
  const headers = {};
  for (const line of head.replace(/\r?\n(?=[ \t])/g, '').split(/\r?\n/)) {
    const colon = line.indexOf(':');
    if (colon > 0) headers[line.slice(0, colon).trim().toLowerCase()] ??= line.slice(colon + 1).trim();
  }
  const ctype = headers['content-type'] || 'text/plain';
  const boundary = /boundary="?([^";]+)"?/i.exec(ctype)?.[1];
  if (/^multipart\//i.test(ctype) && boundary) {
    const texts = [];
    const parts = body.split(new RegExp(`\\r?\\n?--${boundary.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}(?:--)?[ \\t]*\\r?\\n?`));
    for (const part of parts.slice(1)) if (part.trim()) texts.push(...parseEntity(part).texts);
    return { headers, texts };
  }
  const cte = (headers['content-transfer-encoding'] || '7bit').toLowerCase();
  let bytes;
  if (cte === 'base64') bytes = Buffer.from(body.replace(/[^A-Za-z0-9+/=]/g, ''), 'base64');
  else if (cte === 'quoted-printable') bytes = decodeQuotedPrintable(body);
  else bytes = Buffer.from(body, 'latin1');
  return { headers, texts: /^text\//i.test(ctype) ? [bytes.toString('utf8')] : [] };
}

/** Waits for a .eml addressed to `address` holding a link starting with `prefix`; the link. */
async function waitForLink(dir, address, prefix, timeoutMs) {
  const deadline = Date.now() + timeoutMs;
  const re = new RegExp(`${prefix.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}[^\\s"'<>]+`);
  for (;;) {
    let names = [];
    try {
      names = readdirSync(dir, { recursive: true }).map(String).filter((n) => n.endsWith('.eml'));
    } catch (e) {
      if (e.code !== 'ENOENT') throw e;
    }
    const files = names
      .map((n) => {
        try {
          return { path: join(dir, n), mtime: statSync(join(dir, n)).mtimeMs };
        } catch {
          return null;
        }
      })
      .filter(Boolean)
      .sort((a, b) => b.mtime - a.mtime);
    for (const f of files) {
      let mail;
      try {
        mail = parseEntity(readFileSync(f.path).toString('latin1'));
      } catch {
        continue; // being written
      }
      if (!(mail.headers.to || '').toLowerCase().includes(address.toLowerCase())) continue;
      for (const t of mail.texts) {
        const found = re.exec(t.replace(/&amp;/g, '&'));
        if (found) return { link: found[0], path: f.path, subject: mail.headers.subject || '' };
      }
    }
    if (Date.now() >= deadline) {
      throw new CheckError(`no .eml to ${address} with a link ${prefix}... in ${dir} after ${timeoutMs / 1000} s (${files.length} .eml file(s) there)`);
    }
    await new Promise((r) => setTimeout(r, 250));
  }
}

// ---------------------------------------------------------------- main
async function main() {
  const opts = parseArgs(process.argv.slice(2));
  for (const k of ['base', 'bin', 'db', 'keys', 'outbox']) {
    if (!opts[k]) throw new Error(`missing --${k} (usage: --base URL --bin PATH --db sqlite://FILE --keys DIR --outbox DIR [--node-dir DIR] [--chromium PATH] [--shots DIR])`);
  }
  const BASE = opts.base.replace(/\/+$/, '');
  const ORIGIN = new URL(BASE).origin;
  const shotsDir = resolve(opts.shots || join(REPO_ROOT, 'target', 'browser'));
  mkdirSync(shotsDir, { recursive: true });
  for (const name of readdirSync(shotsDir)) if (/^orgs-.*\.png$/.test(name)) unlinkSync(join(shotsDir, name));
  const work = mkdtempSync(join(tmpdir(), 'guichet-browser-orgs-'));

  // ---- set-up with the CLI (same database and keys as the server)
  const env = { ...process.env, DATABASE_URL: opts.db, GUICHET_KEYS__DIR: opts.keys };
  for (const k of Object.keys(env)) if (k.startsWith('GUICHET_') && k !== 'GUICHET_KEYS__DIR') delete env[k];
  delete env.REDIS_URL;
  const cli = (args, input) => {
    try {
      return JSON.parse(execFileSync(opts.bin, [...args, '--json'], { input: input ?? '', env, encoding: 'utf8', stdio: ['pipe', 'pipe', 'pipe'] }));
    } catch (e) {
      throw new CheckError(`guichet ${args.join(' ')}: ${e.stderr?.toString().trim() || e.message}`);
    }
  };
  const password = `acme-${randomBytes(8).toString('hex')}`;
  const setup = new Scenario('set-up', { describe });
  await setup.step(`CLI: user ${ADMIN} owning org acme, user ${GLOBEX_ADMIN} owning org globex`, () => {
    cli(['user', 'create', '--email', ADMIN, '--name', 'Acme Admin', '--password-stdin'], password);
    cli(['org', 'create', '--name', 'Acme Corp', '--slug', 'acme', '--owner', ADMIN]);
    cli(['user', 'create', '--email', GLOBEX_ADMIN, '--name', 'Globex Boss', '--password-stdin'], `globex-${randomBytes(8).toString('hex')}`);
    cli(['org', 'create', '--name', 'Globex', '--slug', 'globex', '--owner', GLOBEX_ADMIN]);
  });
  const client = await setup.step('CLI: a first-party client with permissions orders:read billing:manage', () => {
    const c = cli(['client', 'create', '--name', 'Acme Orders', '--redirect-uri', REDIRECT_URI, '--first-party']);
    ensure(typeof c.client_id === 'string' && c.client_id, `client create printed ${jsonish(c)}`);
    cli(['permission', 'add', '--client', c.client_id, 'orders:read', 'billing:manage']);
    return c.client_id;
  });
  if (setup.blockedBy) return;
  console.log(`   base ${BASE}; client ${client}; outbox ${opts.outbox}; screenshots in ${shotsDir}`);

  // ---- the browser, with every request and every CSP complaint recorded
  const chromium = await loadPlaywright(opts);
  const executablePath = opts.chromium || '/usr/bin/chromium';
  let browser;
  try {
    browser = await chromium.launch({ executablePath, headless: true, args: CHROMIUM_ARGS, timeout: 60000 });
    pass(`launch ${executablePath} (Chromium ${browser.version()}) through playwright-core`);
  } catch (e) {
    fail(`launch ${executablePath} through playwright-core`, describe(e));
    return;
  }
  const requests = []; // { ctx, url, method, type }
  const cspIssues = []; // { ctx, text, page }
  const pageErrors = [];
  const newContext = async (label) => {
    const ctx = await browser.newContext({ locale: 'en-US', viewport: { width: 1000, height: 900 } });
    ctx.setDefaultTimeout(TIMEOUT);
    ctx.setDefaultNavigationTimeout(TIMEOUT);
    // Reported by the page itself too, in case the console message is worded otherwise.
    await ctx.addInitScript(() => {
      document.addEventListener('securitypolicyviolation', (e) => {
        console.error(`securitypolicyviolation: ${e.violatedDirective} blocked ${e.blockedURI}`);
      });
    });
    // The client's redirect URI: nothing listens there; answer it in the browser.
    await ctx.route('http://127.0.0.1:9/**', (route) => route.fulfill({ status: 200, contentType: 'text/plain', body: 'redirect target reached' }));
    ctx.on('request', (r) => requests.push({ ctx: label, url: r.url(), method: r.method(), type: r.resourceType() }));
    ctx.on('page', (p) => {
      p.on('console', (m) => {
        const t = m.text();
        if (/Content Security Policy|Refused to|securitypolicyviolation/i.test(t)) cspIssues.push({ ctx: label, page: p.url(), text: t });
      });
      p.on('pageerror', (e) => pageErrors.push({ ctx: label, page: p.url(), text: String(e) }));
    });
    return ctx;
  };

  let shotNo = 0;
  const shot = async (page, name) => {
    shotNo++;
    const file = join(shotsDir, `orgs-${String(shotNo).padStart(2, '0')}-${name}.png`);
    try {
      await page.screenshot({ path: file, fullPage: true });
    } catch (e) {
      fail(`screenshot ${file}`, describe(e));
    }
  };
  const stateOf = async (page) => {
    const info = await page.evaluate(() => ({
      lang: document.documentElement.lang,
      error: [...document.querySelectorAll('.error, [role=alert]')].map((e) => e.textContent.trim()).join(' / '),
      text: document.body ? document.body.innerText.replace(/\s+/g, ' ').trim().slice(0, 200) : '',
    }));
    return `page ${page.url()} lang=${info.lang}${info.error ? ` error=${jsonish(info.error)}` : ''} text=${jsonish(info.text)}`;
  };
  /** Runs `action` (a click that leads somewhere); the response of the page it leads to. */
  const navigate = async (page, action) => {
    const nav = page.waitForNavigation({ waitUntil: 'load', timeout: TIMEOUT });
    nav.catch(() => {});
    await action();
    return nav;
  };
  const pathOf = (page) => new URL(page.url()).pathname;

  let adminCtx;
  let page;
  const scenario = (title) =>
    new Scenario(title, {
      describe,
      onBlocked: async (step) => {
        if (!page) return 'no page';
        const st = await stateOf(page);
        const file = join(shotsDir, `orgs-failed-${title}-${step.replace(/[^a-z0-9]+/gi, '-').replace(/^-|-$/g, '').slice(0, 60)}.png`);
        await page.screenshot({ path: file, fullPage: true, timeout: 5000 });
        return `${st}; screenshot ${file}`;
      },
    });

  try {
    adminCtx = await newContext('admin');
    page = await adminCtx.newPage();

    // ================================================================ 1. sign in, overview
    const s1 = scenario('sign-in');
    await s1.step(`sign in as ${ADMIN} through /login -> /account`, async () => {
      const r = await page.goto(`${BASE}/login`);
      ensure(r?.status() === 200, `GET /login: ${r?.status()}`);
      await page.fill('#email', ADMIN);
      await page.fill('#password', password);
      await navigate(page, () => page.click('#sign-in'));
      ensure(pathOf(page) === '/account', `after signing in: ${page.url()}`);
    });
    await shot(page, 'account');
    await s1.step('/orgs lists Acme Corp with a link #org-acme -> /orgs/acme', async () => {
      const r = await page.goto(`${BASE}/orgs`);
      ensure(r?.status() === 200, `GET /orgs: ${r?.status()}`);
      const href = await page.getAttribute('#org-acme', 'href', { timeout: 3000 });
      ensure(href === '/orgs/acme', `#org-acme href ${jsonish(href)}`);
      ensure((await page.locator('#org-globex').count()) === 0, '/orgs links globex too');
      await shot(page, 'orgs');
      await navigate(page, () => page.click('#org-acme'));
      ensure(pathOf(page) === '/orgs/acme', `now on ${page.url()}`);
    });
    await s1.check('the overview: h1 "Acme Corp", nav to members, roles, domains, settings', async () => {
      const h1 = (await page.textContent('h1')).trim();
      ensure(h1 === 'Acme Corp', `h1 ${jsonish(h1)}`);
      for (const sec of ['members', 'roles', 'domains', 'settings']) {
        const href = await page.getAttribute(`#org-nav #nav-${sec}`, 'href', { timeout: 3000 });
        ensure(href === `/orgs/acme/${sec}`, `#nav-${sec} href ${jsonish(href)}`);
      }
      const who = await page.textContent('#org-slug');
      ensure(/owner/i.test(who), `#org-slug says ${jsonish(who)} (the admin is the owner)`);
    });
    await shot(page, 'overview');

    // ================================================================ 2. settings and branding
    const s2 = scenario('settings');
    await s2.step('#nav-settings -> /orgs/acme/settings with #settings-form and #logo-form', async () => {
      await navigate(page, () => page.click('#nav-settings'));
      ensure(pathOf(page) === '/orgs/acme/settings', `now on ${page.url()}`);
      await page.locator('#settings-form').waitFor();
      await page.locator('#logo-form').waitFor();
    });
    await s2.check('accent #ffee00 (too light): a 4xx with the contrast message', async () => {
      await page.fill('#accent_color', '#ffee00');
      const r = await navigate(page, () => page.click('#save-settings'));
      ensure(r && r.status() >= 400 && r.status() < 500, `status ${r?.status()} on ${page.url()}`);
      const err = (await page.textContent('#error', { timeout: 3000 })) || '';
      ensure(/contrast|too light/i.test(err), `#error ${jsonish(err)}`);
      console.log(`   settings: #ffee00 -> ${r.status()} ${jsonish(err.trim())}`);
    });
    await shot(page, 'accent-refused');
    await s2.check('...and nothing changed (no accent saved, no brand.css, brand.css has no #ffee00)', async () => {
      await page.goto(`${BASE}/orgs/acme/settings`);
      const v = await page.inputValue('#accent_color');
      ensure(v === '', `#accent_color now ${jsonish(v)}`);
      ensure((await page.locator('link[href*="brand.css"]').count()) === 0, 'the page links brand.css');
      const css = await (await adminCtx.request.get(`${BASE}/orgs/acme/brand.css`)).text();
      ensure(!/ffee00/i.test(css), `brand.css ${jsonish(css)}`);
    });
    await s2.step(`accent ${ACCENT}: saved (notice, value kept, brand.css linked)`, async () => {
      await page.fill('#accent_color', ACCENT);
      const r = await navigate(page, () => page.click('#save-settings'));
      ensure(r?.status() === 200, `status ${r?.status()}`);
      ensure(page.url().includes('notice=settings_saved'), `now on ${page.url()}`);
      await page.locator('#notice').waitFor();
      const v = await page.inputValue('#accent_color');
      ensure(v.toLowerCase() === ACCENT, `#accent_color ${jsonish(v)}`);
      ensure((await page.locator('link[href^="/orgs/acme/brand.css"]').count()) === 1, 'no <link> to /orgs/acme/brand.css');
    });
    const png = join(work, 'acme-logo.png');
    writeFileSync(png, makePng(16, [122, 31, 92]));
    let logoSrc = null;
    await s2.step('upload a 16x16 PNG through #logo (multipart) -> saved, #org-logo shown', async () => {
      await page.setInputFiles('#logo', png);
      const r = await navigate(page, () => page.click('#logo-form button[type="submit"]'));
      ensure(r?.status() === 200, `status ${r?.status()} on ${page.url()}`);
      ensure(page.url().includes('notice=logo_saved'), `now on ${page.url()}`);
      logoSrc = await page.getAttribute('#org-logo', 'src', { timeout: 3000 });
      ensure(/^\/orgs\/acme\/logo\?v=.+/.test(logoSrc || ''), `#org-logo src ${jsonish(logoSrc)}`);
    });
    await shot(page, 'settings-branded');
    /** #org-brand holds the loaded logo; the accent is what the page's buttons wear. */
    const brandOn = async (where, buttonSel) => {
      const b = await page.evaluate(
        ([sel, accent]) => {
          const brand = document.querySelector('#org-brand');
          const img = brand?.querySelector('img');
          let button = sel ? document.querySelector(sel) : null;
          let probe = false;
          if (!button) {
            // No primary button on this page: a plain <button> added to it shows what one wears.
            button = document.createElement('button');
            button.type = 'button';
            button.textContent = 'probe';
            document.querySelector('main').appendChild(button);
            probe = true;
          }
          const bg = getComputedStyle(button).backgroundColor;
          if (probe) button.remove();
          return {
            brand: brand ? brand.textContent.trim() : null,
            img: img ? { src: img.getAttribute('src'), complete: img.complete, w: img.naturalWidth, h: img.naturalHeight } : null,
            bg,
            probe,
            brandColor: brand ? getComputedStyle(brand).color : null,
            accentVar: getComputedStyle(document.documentElement).getPropertyValue('--accent').trim(),
            accent,
          };
        },
        [buttonSel, ACCENT],
      );
      console.log(`   ${where}: #org-brand ${jsonish(b.brand)}, img ${jsonish(b.img)}, button background ${b.bg}${b.probe ? ' (a probe <button>: no primary button there)' : ''}, --accent ${b.accentVar}`);
      ensure(b.brand !== null, 'no #org-brand');
      ensure(b.brand.includes('Acme Corp'), `#org-brand says ${jsonish(b.brand)}`);
      ensure(b.img && b.img.complete && b.img.w === 16 && b.img.h === 16, `logo ${jsonish(b.img)}`);
      ensure(b.img.src === logoSrc, `logo src ${jsonish(b.img.src)}, settings shows ${jsonish(logoSrc)}`);
      ensure(b.bg === ACCENT_RGB, `button background ${b.bg}`);
      ensure(b.brandColor === ACCENT_RGB, `#org-brand colour ${b.brandColor}`);
    };
    await s2.check(`settings page: #org-brand shows the loaded logo (16x16), #save-settings is ${ACCENT_RGB}`, async () => {
      await page.goto(`${BASE}/orgs/acme/settings`);
      await brandOn('settings', '#save-settings');
    });
    await s2.check(`/account: #org-brand shows the loaded logo, a button there is ${ACCENT_RGB}`, async () => {
      await page.goto(`${BASE}/account`);
      await brandOn('/account', 'main button:not(.secondary)');
    });
    await shot(page, 'account-branded');
    await s2.check('GET the logo: image/png, nosniff; brand.css: --accent #7a1f5c', async () => {
      const r = await adminCtx.request.get(`${BASE}${logoSrc}`);
      ensure(r.status() === 200 && r.headers()['content-type'] === 'image/png', `logo: ${r.status()} ${r.headers()['content-type']}`);
      ensure(r.headers()['x-content-type-options'] === 'nosniff', `X-Content-Type-Options ${r.headers()['x-content-type-options']}`);
      const css = await (await adminCtx.request.get(`${BASE}/orgs/acme/brand.css`)).text();
      ensure(css.toLowerCase().includes(ACCENT), `brand.css ${jsonish(css)}`);
    });
    const svg = join(work, 'acme-logo.svg');
    writeFileSync(svg, SVG);
    await s2.check('upload an SVG as the logo: refused (4xx) with a message; the PNG stays', async () => {
      await page.goto(`${BASE}/orgs/acme/settings`);
      await page.setInputFiles('#logo', { name: 'acme-logo.svg', mimeType: 'image/svg+xml', buffer: Buffer.from(SVG) });
      const r = await navigate(page, () => page.click('#logo-form button[type="submit"]'));
      ensure(r && r.status() >= 400 && r.status() < 500, `status ${r?.status()} on ${page.url()}`);
      const err = (await page.textContent('#error', { timeout: 3000 })) || '';
      ensure(/PNG|JPEG|GIF|WebP/i.test(err), `#error ${jsonish(err)}`);
      console.log(`   settings: SVG logo -> ${r.status()} ${jsonish(err.trim())}`);
      await shot(page, 'svg-refused');
      await page.goto(`${BASE}/orgs/acme/settings`);
      const src = await page.getAttribute('#org-logo', 'src', { timeout: 3000 });
      ensure(src === logoSrc, `#org-logo src now ${jsonish(src)} (was ${jsonish(logoSrc)})`);
    });

    // ================================================================ 3. members
    const s3 = scenario('members');
    await s3.step(`#nav-members; invite ${INVITEE} as admin through #invite-form -> #notice`, async () => {
      await page.goto(`${BASE}/orgs/acme`);
      await navigate(page, () => page.click('#nav-members'));
      ensure(pathOf(page) === '/orgs/acme/members', `now on ${page.url()}`);
      await page.fill('#invite-form [name="email"]', INVITEE);
      await page.selectOption('#invite-form [name="role"]', 'admin');
      const r = await navigate(page, () => page.click('#invite-form button[type="submit"]'));
      ensure(r?.status() === 200 && page.url().includes('notice=invited'), `status ${r?.status()} on ${page.url()}`);
      await page.locator('#notice').waitFor();
    });
    await shot(page, 'invited');
    const mail = await s3.step(`the invitation mail to ${INVITEE} in the outbox links ${BASE}/invite?token=`, async () => {
      const m = await waitForLink(opts.outbox, INVITEE, `${BASE}/invite?token=`, MAIL_WAIT_MS);
      console.log(`   members: mail ${m.path}: Subject ${jsonish(m.subject)}`);
      return m;
    });
    let inviteeId = null;
    await s3.step('the link in a fresh browser context: accept -> an account, signed in on /account', async () => {
      const ctx = await newContext('invitee');
      try {
        const p = await ctx.newPage();
        const r = await p.goto(mail.link);
        ensure(r?.status() === 200, `GET the link: ${r?.status()}`);
        await shot(p, 'invitation');
        await navigate(p, () => p.click('#confirm'));
        ensure(new URL(p.url()).pathname === '/account', `after accepting: ${p.url()} (${await stateOf(p)})`);
        const shown = await p.textContent('#account');
        ensure(shown.includes(INVITEE), `#account says ${jsonish(shown)}`);
        await shot(p, 'invitee-account');
      } finally {
        await ctx.close().catch(() => {});
      }
    });
    await s3.step('reload the members page: the new member is listed with role admin', async () => {
      await page.goto(`${BASE}/orgs/acme/members`);
      const row = page.locator('#members tbody tr', { has: page.locator('td.email', { hasText: INVITEE }) });
      ensure((await row.count()) === 1, `${await row.count()} rows for ${INVITEE}`);
      const id = await row.getAttribute('id');
      inviteeId = id?.replace(/^member-/, '');
      ensure(inviteeId, `row id ${jsonish(id)}`);
      const role = await row.getAttribute('data-role');
      ensure(role === 'admin', `data-role ${jsonish(role)}`);
      const sel = await page.inputValue(`#member-role-${inviteeId} select[name="role"]`);
      ensure(sel === 'admin', `the role select shows ${jsonish(sel)}`);
    });
    await shot(page, 'members-invitee');
    await s3.check('change their role to member with #member-role-<id>', async () => {
      await page.selectOption(`#member-role-${inviteeId} select[name="role"]`, 'member');
      const r = await navigate(page, () => page.click(`#member-role-${inviteeId} button[type="submit"]`));
      ensure(r?.status() === 200 && page.url().includes('notice=role_changed'), `status ${r?.status()} on ${page.url()}`);
      const role = await page.getAttribute(`#member-${inviteeId}`, 'data-role');
      ensure(role === 'member', `data-role now ${jsonish(role)}`);
    });
    await s3.step(`/orgs/acme/roles: #role-form makes "buyer" for ${client} with orders:read`, async () => {
      await page.goto(`${BASE}/orgs/acme/roles`);
      await page.selectOption('#role-client', client);
      await page.fill('#role-name', 'buyer');
      const label = page.locator('#role-form label.check', { hasText: `${client}:orders:read` });
      ensure((await label.count()) === 1, `${await label.count()} checkboxes labelled ${client}:orders:read`);
      await label.locator('input[type="checkbox"]').check();
      const r = await navigate(page, () => page.click('#role-form button[type="submit"]'));
      ensure(r?.status() === 200 && page.url().includes('notice=role_created'), `status ${r?.status()} on ${page.url()}`);
      const li = page.locator(`section.client[data-client="${client}"] li[id^="role-"]`, { has: page.locator('strong', { hasText: /^buyer$/ }) });
      ensure((await li.count()) === 1, `${await li.count()} roles named buyer listed for the client`);
      const checked = await li.locator('input[type="checkbox"]:checked').evaluateAll((els) => els.map((e) => e.value));
      ensure(jsonish(checked) === '["orders:read"]', `buyer's checked permissions ${jsonish(checked)}`);
    });
    await shot(page, 'roles');
    await s3.check(`grant ${client}/buyer to the new member with #grant-form -> shown on their row`, async () => {
      await page.goto(`${BASE}/orgs/acme/members`);
      await page.selectOption('#grant-form [name="user_id"]', inviteeId);
      await page.selectOption('#grant-form [name="role_id"]', { label: `${client}/buyer` });
      const r = await navigate(page, () => page.click('#grant-form button[type="submit"]'));
      ensure(r?.status() === 200 && page.url().includes('notice=granted'), `status ${r?.status()} on ${page.url()}`);
      const roles = await page.locator(`#member-${inviteeId} .granted .role`).allTextContents();
      ensure(roles.map((t) => t.trim()).includes(`${client}/buyer`), `their row shows ${jsonish(roles)}`);
      const mine = await page.locator(`#members tr[id^="member-"]:not(#member-${inviteeId}) .granted .role`).count();
      ensure(mine === 0, `${mine} roles on other rows`);
    });
    await shot(page, 'members-granted');

    // ================================================================ 4. domains
    const s4 = scenario('domains');
    await s4.check(`add ${DOMAIN} with #domain-form: the TXT record to publish, pending`, async () => {
      await page.goto(`${BASE}/orgs/acme/domains`);
      await page.fill('#domain-form [name="domain"]', DOMAIN);
      const r = await navigate(page, () => page.click('#domain-form button[type="submit"]'));
      ensure(r?.status() === 200 && page.url().includes('notice=domain_added'), `status ${r?.status()} on ${page.url()}`);
      const sec = page.locator(`section.domain[id="domain-${DOMAIN}"]`);
      ensure((await sec.count()) === 1, `no section #domain-${DOMAIN}`);
      const name = (await sec.locator('code.txt-name').textContent()).trim();
      const value = (await sec.locator('code.txt-value').textContent()).trim();
      const state = (await sec.locator('.state').textContent()).trim();
      const verified = await sec.getAttribute('data-verified');
      console.log(`   domains: ${name} TXT ${jsonish(value)}, state ${jsonish(state)}, data-verified=${verified}`);
      ensure(name === `_guichet-challenge.${DOMAIN}`, `.txt-name ${jsonish(name)}`);
      ensure(value.length >= 16, `.txt-value ${jsonish(value)}`);
      ensure(verified === 'false' && /pending/i.test(state), `state ${jsonish(state)}, data-verified=${verified}`);
    });
    await shot(page, 'domains');

    // ================================================================ 5. isolation
    const s5 = scenario('isolation');
    for (const path of ['/orgs/globex', '/orgs/globex/members', '/orgs/globex/settings', '/orgs/globex/domains', '/orgs/globex/roles']) {
      await s5.check(`the Acme admin opening ${path}: 404, nothing of Globex shown`, async () => {
        const r = await page.goto(`${BASE}${path}`);
        ensure(r?.status() === 404, `status ${r?.status()} (${await stateOf(page)})`);
        const text = await page.evaluate(() => document.body.innerText);
        ensure(!/globex/i.test(text.replace(/\/orgs\/globex\S*/g, '')), `the page shows ${jsonish(text.slice(0, 200))}`);
        if (path === '/orgs/globex/settings') await shot(page, 'globex-404');
      });
    }

    // ================================================================ 7. the organization chooser
    const s7 = scenario('chooser');
    await s7.step(`CLI: org member add --org globex --email ${ADMIN}`, () => {
      cli(['org', 'member', 'add', '--org', 'globex', '--email', ADMIN]);
    });
    const verifier = randomBytes(32).toString('base64url');
    const challenge = createHash('sha256').update(verifier).digest('base64url');
    const authorize =
      `${BASE}/authorize?response_type=code&client_id=${encodeURIComponent(client)}` +
      `&redirect_uri=${encodeURIComponent(REDIRECT_URI)}&scope=openid%20org&state=s` +
      `&code_challenge=${challenge}&code_challenge_method=S256`;
    await s7.step('/authorize (scope openid org, S256): the chooser with #org-acme and #org-globex', async () => {
      ensure(challenge.length === 43, `challenge ${challenge}`);
      const r = await page.goto(authorize);
      ensure(r?.status() === 200, `status ${r?.status()} on ${page.url()}`);
      await page.locator('#choose-org').waitFor();
      for (const slug of ['acme', 'globex']) ensure((await page.locator(`#choose-org button#org-${slug}`).count()) === 1, `no #org-${slug}`);
    });
    await shot(page, 'chooser');
    await s7.check(`click #org-globex -> ${REDIRECT_URI}?code=...&state=s`, async () => {
      const [req] = await Promise.all([
        page.waitForRequest((q) => q.url().startsWith(`${REDIRECT_URI}?`), { timeout: TIMEOUT }),
        page.click('#org-globex'),
      ]);
      await page.waitForURL((u) => u.href.startsWith(`${REDIRECT_URI}?`));
      const u = new URL(req.url());
      console.log(`   chooser: redirected to ${u.origin}${u.pathname}?${[...u.searchParams.keys()].join('&')}`);
      ensure(u.searchParams.get('state') === 's', `state ${jsonish(u.searchParams.get('state'))}`);
      ensure((u.searchParams.get('code') || '').length >= 16, `code ${jsonish(u.searchParams.get('code'))}`);
      ensure(!u.searchParams.has('error'), `error ${u.searchParams.get('error')}: ${u.searchParams.get('error_description')}`);
    });

    // ================================================================ 8. French
    const s8 = scenario('french');
    await s8.check('#lang-fr on /orgs/acme/members: <html lang="fr">, headings in French', async () => {
      await page.goto(`${BASE}/orgs/acme/members`);
      const before = await page.evaluate(() => ({
        lang: document.documentElement.lang,
        h1: document.querySelector('h1').textContent.trim(),
        h2: [...document.querySelectorAll('h2')].map((h) => h.textContent.trim()),
        nav: document.querySelector('#nav-settings').textContent.trim(),
      }));
      ensure(before.lang === 'en', `before the switch: lang ${jsonish(before.lang)}`);
      await navigate(page, () => page.click('#lang-fr'));
      ensure(pathOf(page) === '/orgs/acme/members', `after the switch: ${page.url()}`);
      const after = await page.evaluate(() => ({
        lang: document.documentElement.lang,
        h1: document.querySelector('h1').textContent.trim(),
        h2: [...document.querySelectorAll('h2')].map((h) => h.textContent.trim()),
        nav: document.querySelector('#nav-settings').textContent.trim(),
      }));
      console.log(`   french: h1 ${jsonish(before.h1)} -> ${jsonish(after.h1)}, h2 ${jsonish(after.h2)}, #nav-settings ${jsonish(after.nav)}`);
      ensure(after.lang === 'fr', `lang ${jsonish(after.lang)}`);
      ensure(after.h1 !== before.h1 && after.nav !== before.nav, `h1 ${jsonish(after.h1)}, #nav-settings ${jsonish(after.nav)} as in English`);
      ensure(after.h2.every((h, i) => h !== before.h2[i]), `h2 ${jsonish(after.h2)} vs ${jsonish(before.h2)}`);
    });
    await shot(page, 'members-fr');
    await s8.check('in French, the settings page too (<html lang="fr">, h1 not "Settings")', async () => {
      await page.goto(`${BASE}/orgs/acme/settings`);
      const lang = await page.getAttribute('html', 'lang');
      const h1 = (await page.textContent('h1')).trim();
      ensure(lang === 'fr' && h1 !== 'Settings', `lang ${jsonish(lang)}, h1 ${jsonish(h1)}`);
    });
    await shot(page, 'settings-fr');

    // ================================================================ 6. the watchers themselves
    const s6 = scenario('watchers');
    await s6.check("the org pages carry the CSP (script-src 'self', no 'unsafe-inline')", async () => {
      const r = await adminCtx.request.get(`${BASE}/orgs/acme/settings`, { maxRedirects: 0 });
      const csp = r.headers()['content-security-policy'] || '';
      ensure(r.status() === 200, `status ${r.status()}`);
      ensure(/script-src 'self'/.test(csp) && !/unsafe-inline/.test(csp), `Content-Security-Policy ${jsonish(csp)}`);
    });
    await s6.check('the CSP watcher sees a violation provoked on purpose (another context, not counted)', async () => {
      const ctx = await newContext('probe');
      try {
        const p = await ctx.newPage();
        await p.goto(`${BASE}/login`);
        await p.evaluate(() => {
          const img = document.createElement('img');
          img.src = 'http://127.0.0.1:9/probe.png';
          document.body.appendChild(img);
        });
        await p.waitForTimeout(500);
        const seen = cspIssues.filter((c) => c.ctx === 'probe');
        ensure(seen.length > 0, 'no console message seen for an image blocked by img-src');
        console.log(`   watchers: provoked ${jsonish(seen[0].text)}`);
      } finally {
        await ctx.close().catch(() => {});
      }
    });
  } catch (e) {
    fail('scenario crashed', `${describe(e)}${e?.stack ? ` ${e.stack.split('\n').slice(1, 3).join(' ')}` : ''}`);
  } finally {
    await browser.close().catch(() => {});
    rmSync(work, { recursive: true, force: true });
  }

  // ================================================================ 6. throughout
  console.log('-- throughout');
  const http = requests.filter((r) => /^https?:/.test(r.url) && r.ctx !== 'probe');
  const offsite = http.filter((r) => new URL(r.url).origin !== ORIGIN);
  const foreign = offsite.filter((r) => !(r.type === 'document' && r.url.startsWith(`${REDIRECT_URI}?`)));
  const sub = http.filter((r) => r.type !== 'document');
  console.log(`   ${http.length} requests recorded (${sub.length} subresources: ${[...new Set(sub.map((r) => new URL(r.url).pathname))].join(', ')})`);
  if (http.length >= 20 && sub.some((r) => r.url.includes('/brand.css')) && sub.some((r) => r.url.includes('/logo?v='))) {
    pass(`requests recorded: ${http.length}, among them brand.css and the logo`);
  } else {
    fail('requests recorded (at least 20, among them brand.css and the logo)', `${http.length} recorded: ${jsonish(http.slice(0, 20).map((r) => r.url))}`);
  }
  const redirects = new Set(offsite.filter((r) => !foreign.includes(r)).map((r) => r.url)).size;
  if (foreign.length === 0) {
    pass(`no request left ${ORIGIN} (but the navigation to the client's ${REDIRECT_URI}: ${redirects} URL)`);
  } else {
    fail(`no request leaves ${ORIGIN}`, jsonish(foreign.slice(0, 10)));
  }
  const violations = cspIssues.filter((c) => c.ctx !== 'probe');
  if (violations.length === 0) pass('no Content Security Policy violation on any page');
  else fail('no Content Security Policy violation', jsonish(violations.slice(0, 10)));
  for (const e of pageErrors) console.log(`   page error on ${e.page} (${e.ctx}): ${e.text}`);
}

let crashed = false;
try {
  await main();
} catch (e) {
  crashed = true;
  fail('browser_orgs', `crashed: ${describe(e)}${e?.stack ? ` ${e.stack.split('\n').slice(1, 4).join(' ')}` : ''}`);
}
console.log(`${results.passed} passed, ${results.failed} failed`);
process.exitCode = results.failed || crashed ? 1 : 0;
