#!/usr/bin/env node
// Guichet as a SAML 2.0 service provider, in a real browser: Debian's Chromium
// (/usr/bin/chromium) driven by npm `playwright-core`, against a pysaml2 IdP web server
// (conformance/saml_idp_server.py, started here as a child process).
//
//   node conformance/browser_saml.mjs --base http://localhost:PORT --bin PATH --db sqlite://FILE \
//        --keys DIR [--python PATH] [--node-dir DIR] [--chromium /usr/bin/chromium] [--shots DIR] \
//        [--org saml-acme] [--domain acme.test]
//
// Needs: the Python venv with pysaml2 (`$VENV/bin/pip install pysaml2`; --python, default
// $HOME/.cache/guichet-venv/bin/python) and Debian's xmlsec1 (`apt-get install -y xmlsec1`), for
// the IdP server; playwright-core in --node-dir and /usr/bin/chromium, as the other browser checks.
//
// --base: a running server whose issuer is that URL (http://localhost:PORT: the IdP listens on
// 127.0.0.1, another *site*, so its POST to the ACS is cross-site and the SameSite=Lax session
// cookie stays behind); --bin/--db/--keys: the `guichet` CLI against the same database and keys.
// The domain must not be verified by another organization of that database already (a pending
// claim, as browser_orgs.mjs leaves on acme.test, is fine).
// Set-up with the CLI: org --org with domain --domain claimed and verified (the TXT record served
// by a DNS responder on loopback in this process, the CLI's GUICHET_DNS_RESOLVER), the IdP server
// started (metadata at <idp>/metadata; it fetches Guichet's SP metadata from the AuthnRequest's
// Issuer, the sp_entity_id), a SAML connection from the IdP metadata. Then, in Chromium:
//  1. login_url?return_to=/account -> the IdP's page; ann@<domain> typed; its auto-posted form
//     reaches the ACS cross-site (no session cookie) -> Guichet's re-post page (form#form_post)
//     posts again from Guichet's origin (with the cookie, guichet_repost=1) -> /account shows
//     ann@<domain>;
//  2. home-realm discovery, a fresh context: /login, bob@<domain> typed alone -> the IdP ->
//     back signed in (/account shows bob);
//  3. eve@elsewhere.test typed at the IdP: a 403 error page with an error id; /account is not
//     reachable (redirect to /login); no account made for eve;
//  4. JavaScript disabled: the IdP's <noscript> Continue, then Guichet's re-post page shows its
//     <noscript> button -> clicked -> /account shows carol@<domain>;
//  throughout: the ACS never posted more than twice per sign-in, no 5xx from Guichet.
// Screenshots: target/browser/saml-<nn>-<step>.png (--shots to change).
// Prints `PASS name` / `FAIL name: reason` per check and ends with `N passed, M failed`;
// exits 1 if anything failed.

import { execFile, spawn } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { mkdirSync, mkdtempSync, readdirSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

import { CHROMIUM_ARGS, loadPlaywright, parseArgs } from './browser.mjs';
import { CheckError, ensure, fail, jsonish, oneLine, pass, results, Scenario } from './checks.mjs';

const HERE = dirname(fileURLToPath(import.meta.url));
const REPO_ROOT = resolve(HERE, '..');
const TIMEOUT = 15000; // one click, fill, navigation
const FLOW_TIMEOUT = 30000; // a whole SAML round trip (IdP signing with xmlsec1, two ACS posts)

function describe(e) {
  if (!(e instanceof Error)) return jsonish(e);
  const msg = e.name === 'CheckError' ? e.message : e.message.split('\n').slice(0, 4).join(' | ');
  return `${e.name}: ${msg}`;
}

// ---------------------------------------------------------------- DNS on loopback
// A minimal UDP responder: TXT answers from `records` (lower-case name -> [values]), NXDOMAIN
// for any other name. Enough for `guichet domain verify` (GUICHET_DNS_RESOLVER=127.0.0.1:PORT).
function startDns(records) {
  const sock = createSocket('udp4');
  const queries = [];
  sock.on('message', (msg, rinfo) => {
    try {
      if (msg.length < 12 || msg.readUInt16BE(4) < 1) return;
      let off = 12;
      const labels = [];
      while (off < msg.length && msg[off] !== 0) {
        const len = msg[off];
        if (len > 63) return; // no compression in a question
        labels.push(msg.subarray(off + 1, off + 1 + len).toString('latin1'));
        off += 1 + len;
      }
      off += 1;
      const qtype = msg.readUInt16BE(off);
      const question = msg.subarray(12, off + 4);
      const name = labels.join('.').toLowerCase();
      queries.push(name);
      const values = records[name];
      const answers = [];
      if (values && qtype === 16) {
        for (const v of values) {
          const chunks = [];
          for (let i = 0; i < v.length || i === 0; i += 255) {
            const b = Buffer.from(v.slice(i, i + 255), 'latin1');
            chunks.push(Buffer.from([b.length]), b);
          }
          const rdata = Buffer.concat(chunks);
          const rr = Buffer.alloc(12);
          rr.writeUInt16BE(0xc00c, 0); // the question's name
          rr.writeUInt16BE(16, 2); // TXT
          rr.writeUInt16BE(1, 4); // IN
          rr.writeUInt32BE(1, 6); // TTL
          rr.writeUInt16BE(rdata.length, 10);
          answers.push(rr, rdata);
        }
      }
      const header = Buffer.alloc(12);
      header.writeUInt16BE(msg.readUInt16BE(0), 0); // id
      const rd = msg[2] & 0x01;
      header[2] = 0x84 | rd; // QR, AA, RD copied
      header[3] = 0x80 | (values ? 0 : 3); // RA; NOERROR or NXDOMAIN
      header.writeUInt16BE(1, 4);
      header.writeUInt16BE(answers.length / 2, 6);
      sock.send(Buffer.concat([header, question, ...answers]), rinfo.port, rinfo.address);
    } catch {
      // a malformed query: no answer
    }
  });
  return new Promise((res, rej) => {
    sock.once('error', rej);
    sock.bind(0, '127.0.0.1', () => res({ addr: `127.0.0.1:${sock.address().port}`, queries, close: () => sock.close() }));
  });
}

// ---------------------------------------------------------------- the IdP server (child process)
function startIdp(python, script, trustPrefix) {
  const child = spawn(python, [script, '--host', '127.0.0.1', '--port', '0', '--trust-sp-prefix', trustPrefix, '--exit-on-eof'], {
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  const log = [];
  let errBuf = '';
  child.stderr.on('data', (d) => {
    errBuf += d.toString();
    const lines = errBuf.split('\n');
    errBuf = lines.pop();
    for (const l of lines) {
      log.push(l);
      if (log.length > 200) log.shift();
    }
  });
  const info = new Promise((res, rej) => {
    let out = '';
    const timer = setTimeout(() => rej(new CheckError(`the IdP server printed nothing within 30 s; its log: ${log.slice(-5).join(' | ')}`)), 30000);
    child.stdout.on('data', (d) => {
      out += d.toString();
      const nl = out.indexOf('\n');
      if (nl >= 0) {
        clearTimeout(timer);
        try {
          res(JSON.parse(out.slice(0, nl)));
        } catch (e) {
          rej(new CheckError(`the IdP server printed ${jsonish(out.slice(0, 200))}: ${e.message}`));
        }
      }
    });
    child.on('error', (e) => {
      clearTimeout(timer);
      rej(new CheckError(`cannot start ${python} ${script}: ${e.message}`));
    });
    child.on('exit', (code, sig) => {
      clearTimeout(timer);
      rej(new CheckError(`the IdP server exited (${code ?? sig}) before listening; its log: ${[...log, errBuf].slice(-6).join(' | ')}`));
    });
  });
  const stop = () =>
    new Promise((res) => {
      if (child.exitCode !== null || child.signalCode !== null) return res();
      child.once('exit', () => res());
      child.stdin.end();
      setTimeout(() => child.kill('SIGTERM'), 2000).unref();
    });
  return { child, info, log, stop };
}

// ---------------------------------------------------------------- main
async function main() {
  const opts = parseArgs(process.argv.slice(2));
  for (const k of ['base', 'bin', 'db', 'keys']) {
    if (!opts[k]) throw new Error(`missing --${k} (usage: --base URL --bin PATH --db sqlite://FILE --keys DIR [--python PATH] [--node-dir DIR] [--chromium PATH] [--shots DIR] [--org SLUG] [--domain NAME])`);
  }
  const BASE = opts.base.replace(/\/+$/, '');
  const ORIGIN = new URL(BASE).origin;
  const ORG = opts.org || 'saml-acme';
  const DOMAIN = (opts.domain || 'acme.test').toLowerCase();
  const ANN = `ann@${DOMAIN}`;
  const BOB = `bob@${DOMAIN}`;
  const CAROL = `carol@${DOMAIN}`;
  const EVE = 'eve@elsewhere.test';
  const python = opts.python || join(homedir(), '.cache', 'guichet-venv', 'bin', 'python');
  const shotsDir = resolve(opts.shots || join(REPO_ROOT, 'target', 'browser'));
  mkdirSync(shotsDir, { recursive: true });
  for (const name of readdirSync(shotsDir)) if (/^saml-.*\.png$/.test(name)) unlinkSync(join(shotsDir, name));
  const work = mkdtempSync(join(tmpdir(), 'guichet-browser-saml-'));

  const records = {};
  const dns = await startDns(records);
  let idp = null;
  let browser = null;
  try {
    // ---- set-up with the CLI (same database and keys as the server; issuer = --base)
    const env = { ...process.env, DATABASE_URL: opts.db, GUICHET_KEYS__DIR: opts.keys };
    for (const k of Object.keys(env)) if (k.startsWith('GUICHET_') && k !== 'GUICHET_KEYS__DIR') delete env[k];
    delete env.REDIS_URL;
    Object.assign(env, { GUICHET_SERVER__ISSUER: BASE, GUICHET_DNS_RESOLVER: dns.addr, GUICHET_DNS__TIMEOUT_MS: '2000' });
    // Asynchronous: the DNS responder answers from this process's event loop meanwhile.
    const cli = (args) =>
      new Promise((res, rej) => {
        execFile(opts.bin, [...args, '--json'], { env, encoding: 'utf8', timeout: 60000 }, (e, stdout, stderr) => {
          if (e) return rej(new CheckError(`guichet ${args.join(' ')}: ${stderr?.toString().trim() || e.message}`));
          try {
            res(JSON.parse(stdout));
          } catch (err) {
            rej(new CheckError(`guichet ${args.join(' ')} printed ${jsonish(stdout.slice(0, 200))}: ${err.message}`));
          }
        }).stdin.end();
      });
    const setup = new Scenario('set-up', { describe });
    await setup.step(`CLI: org ${ORG}, domain ${DOMAIN} claimed and verified (TXT served on ${dns.addr})`, async () => {
      await cli(['org', 'create', '--name', 'Acme SAML', '--slug', ORG]);
      const d = await cli(['domain', 'add', '--org', ORG, '--domain', DOMAIN]);
      const rec = d.record;
      ensure(rec && rec.name && rec.value, `domain add printed ${jsonish(d)}`);
      records[rec.name.replace(/\.$/, '').toLowerCase()] = [rec.value];
      const v = await cli(['domain', 'verify', '--org', ORG, '--domain', DOMAIN]);
      ensure(v.verified === true, `domain verify printed ${jsonish(v)} (DNS queries seen: ${jsonish(dns.queries)})`);
    });
    const idpInfo = await setup.step(`the pysaml2 IdP server on 127.0.0.1 (trusting SPs under ${BASE}/saml/)`, async () => {
      idp = startIdp(python, join(HERE, 'saml_idp_server.py'), `${BASE}/saml/`);
      const info = await idp.info;
      console.log(`   IdP ${info.base} (entityID ${info.entity_id}, SSO ${info.sso_url})`);
      return info;
    });
    const conn = await setup.step('CLI: connection create --type saml --metadata-file <the IdP metadata>', async () => {
      const r = await fetch(idpInfo.metadata_url);
      ensure(r.status === 200, `GET ${idpInfo.metadata_url}: ${r.status}`);
      const file = join(work, 'idp-metadata.xml');
      writeFileSync(file, await r.text());
      const c = await cli(['connection', 'create', '--org', ORG, '--type', 'saml', '--metadata-file', file, '--name', 'Acme IdP (pysaml2)']);
      console.log(`   connection ${jsonish(c)}`);
      ensure(typeof c.id === 'string' && c.id, `no id in ${jsonish(c)}`);
      ensure(c.sp_entity_id === `${BASE}/saml/${c.id}/metadata`, `sp_entity_id ${jsonish(c.sp_entity_id)}`);
      ensure(c.acs_url === `${BASE}/saml/${c.id}/acs`, `acs_url ${jsonish(c.acs_url)}`);
      ensure(c.login_url === `${BASE}/sso/${c.id}`, `login_url ${jsonish(c.login_url)}`);
      return c;
    });
    await setup.check('the SP metadata is served at sp_entity_id (an EntityDescriptor with that entityID, the ACS)', async () => {
      const r = await fetch(conn.sp_entity_id);
      const xml = await r.text();
      ensure(r.status === 200, `GET ${conn.sp_entity_id}: ${r.status}`);
      ensure(xml.includes(`entityID="${conn.sp_entity_id}"`), `no entityID="${conn.sp_entity_id}" in ${jsonish(xml.slice(0, 300))}`);
      ensure(xml.includes(`Location="${conn.acs_url}"`), `no Location="${conn.acs_url}" in the metadata`);
    });
    if (setup.blockedBy) return;

    // ---- the browser, with every ACS post and every 5xx recorded
    const chromium = await loadPlaywright(opts);
    const executablePath = opts.chromium || '/usr/bin/chromium';
    try {
      browser = await chromium.launch({ executablePath, headless: true, args: CHROMIUM_ARGS, timeout: 60000 });
      pass(`launch ${executablePath} (Chromium ${browser.version()}) through playwright-core`);
    } catch (e) {
      fail(`launch ${executablePath} through playwright-core`, describe(e));
      return;
    }
    const acsPosts = []; // { ctx, seq, cookie, repost, site, origin, status, location, body }
    const serverErrors = [];
    const pending = [];
    const newContext = async (label, options = {}) => {
      const ctx = await browser.newContext({ locale: 'en-US', viewport: { width: 900, height: 800 }, ...options });
      ctx.setDefaultTimeout(TIMEOUT);
      ctx.setDefaultNavigationTimeout(TIMEOUT);
      ctx.on('response', (resp) => {
        const req = resp.request();
        const url = req.url();
        if (url.startsWith(ORIGIN) && resp.status() >= 500) serverErrors.push({ ctx: label, url, status: resp.status() });
        if (url.split('?')[0] !== conn.acs_url || req.method() !== 'POST') return;
        const entry = { ctx: label, seq: acsPosts.length + 1, status: resp.status(), location: resp.headers().location || '', requestId: resp.headers()['x-request-id'] || '' };
        acsPosts.push(entry);
        const body = new URLSearchParams(req.postData() || '');
        entry.fields = [...body.keys()];
        entry.repost = body.get('guichet_repost') === '1';
        pending.push(
          (async () => {
            const h = await req.allHeaders();
            entry.cookie = /(^|;\s*)guichet_session=/.test(h.cookie || '');
            entry.site = h['sec-fetch-site'] || '';
            entry.origin = h.origin || '';
            if (resp.status() === 200) entry.body = await resp.text().catch(() => '');
          })().catch(() => {}),
        );
      });
      return ctx;
    };
    const settle = async () => {
      while (pending.length) await pending.shift();
    };
    const postsOf = async (label) => {
      await settle();
      return acsPosts.filter((p) => p.ctx === label);
    };
    const showPosts = (posts) =>
      posts.map((p) => `#${p.seq} ${p.repost ? 'repost' : 'first'} (${p.fields.join(',')}) cookie=${p.cookie} Sec-Fetch-Site=${p.site} Origin=${p.origin} -> ${p.status}${p.location ? ` ${p.location}` : ''}`).join('; ');

    let shotNo = 0;
    const shot = async (page, name) => {
      shotNo++;
      const file = join(shotsDir, `saml-${String(shotNo).padStart(2, '0')}-${name}.png`);
      try {
        await page.screenshot({ path: file, fullPage: true });
      } catch (e) {
        fail(`screenshot ${file}`, describe(e));
      }
    };
    const stateOf = async (page) => {
      const info = await page.evaluate(() => ({
        title: document.title,
        text: document.body ? document.body.innerText.replace(/\s+/g, ' ').trim().slice(0, 300) : '',
      }));
      return `page ${page.url()} title=${jsonish(info.title)} text=${jsonish(info.text)}`;
    };
    const pathOf = (page) => new URL(page.url()).pathname;
    const onAccount = (u) => u.origin === ORIGIN && u.pathname === '/account';
    let page;
    let label = '';
    const scenario = (title) =>
      new Scenario(title, {
        describe,
        onBlocked: async (step) => {
          let why = '';
          const posts = await postsOf(label);
          if (posts.length) why += `ACS posts: ${showPosts(posts)}; `;
          const idpLog = idp ? idp.log.slice(-4).join(' | ') : '';
          if (idpLog) why += `IdP log: ${idpLog}; `;
          if (!page) return `${why}no page`;
          const st = await stateOf(page);
          const file = join(shotsDir, `saml-failed-${title}-${step.replace(/[^a-z0-9]+/gi, '-').replace(/^-|-$/g, '').slice(0, 60)}.png`);
          await page.screenshot({ path: file, fullPage: true, timeout: 5000 });
          return `${why}${st}; screenshot ${file}`;
        },
      });
    /** /account in the page: the status and whether it shows `email`. */
    const accountShows = async (email) => {
      if (!onAccount(new URL(page.url()))) {
        const r = await page.goto(`${BASE}/account`);
        ensure(r?.status() === 200 && pathOf(page) === '/account', `GET /account: ${r?.status()} at ${page.url()}`);
      }
      const text = await page.evaluate(() => document.body.innerText);
      ensure(text.includes(email), `/account does not show ${email}: ${jsonish(oneLine(text).slice(0, 300))}`);
      const account = await page.locator('#account').textContent({ timeout: 3000 }).catch(() => null);
      if (account !== null) ensure(account.includes(email), `#account says ${jsonish(account)}`);
    };
    /** The two ACS posts of one browser sign-in: cross-site without the cookie -> the re-post page; same-origin with it -> 303. */
    const checkTwoPosts = async (ctxLabel) => {
      const posts = await postsOf(ctxLabel);
      console.log(`   ${ctxLabel}: ACS posts: ${showPosts(posts)}`);
      ensure(posts.length === 2, `${posts.length} POSTs to the ACS (expected 2: the IdP's, then Guichet's re-post): ${showPosts(posts)}`);
      const [first, second] = posts;
      ensure(!first.repost && !first.cookie && first.site === 'cross-site', `first POST: ${showPosts([first])} (expected cross-site, without guichet_session)`);
      ensure(first.status === 200, `first POST answered ${first.status} (expected 200, the re-post page)`);
      // The re-post page as served, when its body could still be read (with JavaScript on, the
      // page may have posted itself away first; the second POST then proves it was there).
      // Tera escapes attribute values (`/` as &#x2F;): compare the decoded text.
      const b = (first.body || '').replace(/&#x([0-9a-f]+);/gi, (_, h) => String.fromCodePoint(parseInt(h, 16))).replace(/&#([0-9]+);/g, (_, d) => String.fromCodePoint(Number(d)));
      if (b) {
        ensure(/<form[^>]*id="form_post"[^>]*action="\/saml\/[^"/]+\/acs"/.test(b) && b.includes('name="guichet_repost" value="1"'), `the re-post page: ${jsonish(b.slice(0, 400))}`);
        ensure(b.includes('<script src="/static/form_post.js">') && /<noscript><button type="submit">/.test(b), `the re-post page lacks form_post.js or the <noscript> button: ${jsonish(b.slice(0, 600))}`);
      } else {
        console.log(`   ${ctxLabel}: the re-post page's body was gone (the page had posted itself on)`);
      }
      ensure(second.repost && second.cookie && second.site === 'same-origin', `second POST: ${showPosts([second])} (expected same-origin, guichet_repost=1, with guichet_session)`);
      ensure(second.fields.includes('SAMLResponse') && second.fields.includes('RelayState'), `second POST fields ${jsonish(second.fields)}`);
      ensure(second.status === 303 && second.location === '/account', `second POST answered ${second.status} Location ${jsonish(second.location)} (expected 303 /account)`);
    };

    // ================================================================ 1. SP-initiated, cross-site POST, re-post
    label = 'sp-initiated';
    const s1 = scenario('sp-initiated');
    let ctx = await newContext(label);
    page = await ctx.newPage();
    await s1.step(`GET login_url?return_to=/account -> the IdP's page (${idpInfo.sso_url}) with #idp-email`, async () => {
      const r = await page.goto(`${conn.login_url}?return_to=/account`);
      ensure(page.url().startsWith(`${idpInfo.sso_url}?SAMLRequest=`), `now on ${page.url()} (status ${r?.status()})`);
      ensure(r?.status() === 200, `the IdP answered ${r?.status()}: ${await stateOf(page)}`);
      await page.locator('#idp-email').waitFor();
      const sp = (await page.textContent('#idp-sp')).trim();
      ensure(sp === conn.sp_entity_id, `the IdP says the request came from ${jsonish(sp)}`);
    });
    await shot(page, 'idp-login');
    await s1.step(`type ${ANN} at the IdP, #idp-login -> its auto-posted form -> Guichet's re-post -> /account`, async () => {
      await page.fill('#idp-email', ANN);
      await Promise.all([page.waitForURL(onAccount, { timeout: FLOW_TIMEOUT, waitUntil: 'load' }), page.click('#idp-login')]);
    });
    await shot(page, 'account-ann');
    await s1.check(`/account shows ${ANN} (signed in)`, () => accountShows(ANN));
    await s1.check('the ACS got 2 POSTs: cross-site without the cookie -> 200 re-post page; same-origin with it and guichet_repost=1 -> 303 /account', () => checkTwoPosts(label));
    await s1.check('a reload of /account: still signed in (the session cookie kept)', async () => {
      const r = await page.reload();
      ensure(r?.status() === 200 && pathOf(page) === '/account', `reload: ${r?.status()} at ${page.url()}`);
      await accountShows(ANN);
    });
    await ctx.close().catch(() => {});

    // ================================================================ 2. home-realm discovery
    label = 'home-realm';
    const s2 = scenario('home-realm');
    ctx = await newContext(label);
    page = await ctx.newPage();
    await s2.step(`/login, ${BOB} typed alone (#email), #sign-in -> the IdP's page`, async () => {
      const r = await page.goto(`${BASE}/login`);
      ensure(r?.status() === 200, `GET /login: ${r?.status()}`);
      await page.fill('#email', BOB);
      await shot(page, 'login-identifier');
      await Promise.all([page.waitForURL((u) => u.href.startsWith(`${idpInfo.sso_url}?`), { timeout: TIMEOUT }), page.click('#sign-in')]);
      await page.locator('#idp-email').waitFor();
      const hint = await page.inputValue('#idp-email');
      console.log(`   home-realm: at the IdP, #idp-email prefilled with ${jsonish(hint)} (from the AuthnRequest's Subject)`);
    });
    await shot(page, 'hrd-idp-login');
    await s2.step(`type ${BOB} at the IdP, #idp-login -> back at Guichet, signed in`, async () => {
      await page.fill('#idp-email', BOB);
      await Promise.all([page.waitForURL((u) => u.origin === ORIGIN && !u.pathname.startsWith('/saml/'), { timeout: FLOW_TIMEOUT, waitUntil: 'load' }), page.click('#idp-login')]);
      console.log(`   home-realm: landed on ${page.url()}`);
    });
    await shot(page, 'hrd-landed');
    await s2.check(`/account shows ${BOB}`, () => accountShows(BOB));
    await s2.check('the ACS got 2 POSTs (cross-site without the cookie, then the re-post with it)', async () => {
      const posts = await postsOf(label);
      console.log(`   home-realm: ACS posts: ${showPosts(posts)}`);
      ensure(posts.length === 2, `${posts.length} POSTs: ${showPosts(posts)}`);
      ensure(!posts[0].cookie && posts[0].status === 200 && posts[1].repost && posts[1].cookie && posts[1].status === 303, showPosts(posts));
    });
    await ctx.close().catch(() => {});

    // ================================================================ 3. an address outside the verified domains
    label = 'not-admitted';
    const s3 = scenario('not-admitted');
    ctx = await newContext(label);
    page = await ctx.newPage();
    let refusal = null;
    await s3.step(`login_url -> the IdP; type ${EVE} -> Guichet answers with an error page`, async () => {
      await page.goto(`${conn.login_url}?return_to=/account`);
      await page.locator('#idp-email').waitFor();
      await page.fill('#idp-email', EVE);
      await Promise.all([page.waitForURL((u) => u.origin === ORIGIN, { timeout: FLOW_TIMEOUT, waitUntil: 'load' }), page.click('#idp-login')]);
      // The re-post page goes on by itself; wait for the last ACS answer.
      await page.waitForFunction(() => !document.getElementById('form_post'), null, { timeout: FLOW_TIMEOUT });
      await page.waitForLoadState('load');
      const posts = await postsOf(label);
      console.log(`   not-admitted: ACS posts: ${showPosts(posts)}`);
      refusal = posts[posts.length - 1];
      ensure(refusal, 'no POST to the ACS seen');
    });
    await shot(page, 'eve-refused');
    await s3.check('the error page: 403, after the re-post (2 POSTs, no loop)', async () => {
      const posts = await postsOf(label);
      ensure(posts.length === 2 && posts[1].repost, `ACS posts: ${showPosts(posts)}`);
      ensure(refusal.status === 403, `the last ACS answer: ${refusal.status} (${await stateOf(page)})`);
    });
    await s3.check('the error page says why (role=alert, the address is not of a verified domain)', async () => {
      const alert = ((await page.textContent('[role=alert]', { timeout: 3000 })) || '').trim();
      console.log(`   not-admitted: page says ${jsonish(alert)}`);
      ensure(/verified domain|not admitted|not allowed/i.test(alert), `[role=alert] says ${jsonish(alert)}`);
    });
    await s3.check('the error page shows an error id (to quote to the administrator)', async () => {
      const text = await page.evaluate(() => document.body.innerText);
      const code = await page.locator('main code').allTextContents();
      console.log(`   not-admitted: <code> on the page ${jsonish(code)}; X-Request-Id ${jsonish(refusal?.requestId)}`);
      ensure(code.some((c) => /^[0-9a-f-]{8,}$/i.test(c.trim())), `no error id on the page (no <code> id): ${jsonish(oneLine(text))}; the response's X-Request-Id ${jsonish(refusal?.requestId)} (the server's log line has it)`);
    });
    await s3.check('/account is not reachable: redirected to /login', async () => {
      const r = await page.goto(`${BASE}/account`);
      ensure(pathOf(page) === '/login', `GET /account -> ${r?.status()} at ${page.url()}`);
      const text = await page.evaluate(() => document.body.innerText);
      ensure(!text.includes(EVE), `the page shows ${EVE}`);
    });
    await shot(page, 'eve-account-login');
    await s3.check(`no account made for ${EVE} (guichet user list)`, async () => {
      const users = await cli(['user', 'list', '--limit', '100000']);
      const found = (Array.isArray(users) ? users : users.users || []).filter((u) => String(u.email || '').toLowerCase() === EVE);
      ensure(found.length === 0, `user list has ${jsonish(found)}`);
    });
    await ctx.close().catch(() => {});

    // ================================================================ 4. without JavaScript
    label = 'no-js';
    const s4 = scenario('no-js');
    ctx = await newContext(label, { javaScriptEnabled: false });
    page = await ctx.newPage();
    await s4.step(`(JavaScript off) login_url -> the IdP; type ${CAROL}; #idp-login -> the IdP's form with its <noscript> Continue`, async () => {
      await page.goto(`${conn.login_url}?return_to=/account`);
      await page.locator('#idp-email').waitFor();
      await page.fill('#idp-email', CAROL);
      await Promise.all([page.waitForNavigation({ waitUntil: 'load' }), page.click('#idp-login')]);
      ensure(page.url() === `${idpInfo.base}/login`, `now on ${page.url()}`);
      await page.locator('form input[type="submit"]').waitFor();
    });
    await shot(page, 'nojs-idp-continue');
    await s4.step("the IdP's Continue -> Guichet's re-post page: form#form_post (SAMLResponse, RelayState, guichet_repost=1) and a visible <noscript> button", async () => {
      await Promise.all([page.waitForURL((u) => u.href === conn.acs_url, { waitUntil: 'load' }), page.click('form input[type="submit"]')]);
      const posts = await postsOf(label);
      ensure(posts.length === 1 && posts[0].status === 200 && !posts[0].cookie, `ACS posts: ${showPosts(posts)}`);
      const form = await page.evaluate(() => {
        const f = document.getElementById('form_post');
        return f && {
          action: f.getAttribute('action'),
          method: f.getAttribute('method'),
          fields: [...f.querySelectorAll('input[type=hidden]')].map((i) => i.name),
          repost: f.querySelector('input[name=guichet_repost]')?.value,
          script: [...document.scripts].map((x) => x.getAttribute('src')),
        };
      });
      ensure(form && form.action === new URL(conn.acs_url).pathname && form.method === 'post', `form#form_post ${jsonish(form)}`);
      ensure(jsonish(form.fields) === '["SAMLResponse","RelayState","guichet_repost"]' && form.repost === '1', `form#form_post fields ${jsonish(form)}`);
      ensure(form.script.includes('/static/form_post.js'), `scripts ${jsonish(form.script)}`);
      const button = page.locator('#form_post button[type="submit"]');
      await button.waitFor({ state: 'visible', timeout: 3000 });
      console.log(`   no-js: the re-post page's button says ${jsonish((await button.textContent()).trim())}`);
    });
    await shot(page, 'nojs-repost');
    await s4.step('click it -> /account', async () => {
      await Promise.all([page.waitForURL(onAccount, { timeout: FLOW_TIMEOUT, waitUntil: 'load' }), page.click('#form_post button[type="submit"]')]);
    });
    await shot(page, 'nojs-account');
    await s4.check(`/account shows ${CAROL}`, () => accountShows(CAROL));
    await s4.check('the ACS got 2 POSTs: cross-site without the cookie -> re-post page; the button\'s same-origin POST with it -> 303 /account', () => checkTwoPosts(label));
    await ctx.close().catch(() => {});
    page = null;

    // ================================================================ throughout
    console.log('-- throughout');
    await settle();
    if (serverErrors.length === 0) pass(`no 5xx from Guichet (${acsPosts.length} ACS posts in all)`);
    else fail('no 5xx from Guichet', jsonish(serverErrors.slice(0, 10)));
  } catch (e) {
    fail('scenario crashed', `${describe(e)}${e?.stack ? ` ${e.stack.split('\n').slice(1, 3).join(' ')}` : ''}`);
  } finally {
    if (browser) await browser.close().catch(() => {});
    if (idp) await idp.stop();
    dns.close();
    rmSync(work, { recursive: true, force: true });
  }
}

let crashed = false;
try {
  await main();
} catch (e) {
  crashed = true;
  fail('browser_saml', `crashed: ${describe(e)}${e?.stack ? ` ${e.stack.split('\n').slice(1, 4).join(' ')}` : ''}`);
}
console.log(`${results.passed} passed, ${results.failed} failed`);
process.exitCode = results.failed || crashed ? 1 : 0;
