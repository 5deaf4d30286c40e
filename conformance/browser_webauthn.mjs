#!/usr/bin/env node
// WebAuthn in a real browser: Debian's Chromium (playwright-core) with a DevTools virtual
// authenticator (CTAP2, internal, resident keys, user verification). Against a server whose
// issuer is http://localhost:PORT (the RP ID must be a domain; localhost is a secure context).
//
//   node conformance/browser_webauthn.mjs --base http://localhost:PORT --bin PATH \
//        --db sqlite://FILE --keys DIR [--node-dir DIR] [--chromium PATH]
//
// Creates a user with `guichet user create` (same database and keys as the server), then:
// sign in with the password -> register a passkey (#add-passkey) -> recovery codes shown ->
// rename it -> sign out -> passwordless sign-in (#passkey-login) -> sign out -> password then
// the security key as second factor (#use-security-key) -> the history names the methods.
// Negative: an assertion made for one browser's ceremony is refused in another browser's
// session, and replaying a used one is refused.
// PASS/FAIL lines, last line `N passed, M failed`.

import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';

import { CHROMIUM_ARGS, loadPlaywright, parseArgs } from './browser.mjs';
import { ensure, fail, pass, results, Scenario } from './checks.mjs';

const TIMEOUT = 15000;

function describe(e) {
  if (!(e instanceof Error)) return String(e);
  return `${e.name}: ${e.message.split('\n').slice(0, 4).join(' | ')}`;
}

async function main() {
  const opts = parseArgs(process.argv.slice(2));
  for (const k of ['base', 'bin', 'db', 'keys']) {
    if (!opts[k]) throw new Error(`missing --${k}`);
  }
  const base = opts.base.replace(/\/+$/, '');
  const email = `passkey-${randomBytes(4).toString('hex')}@example.com`;
  const password = `webauthn-${randomBytes(8).toString('hex')}`;
  const env = { ...process.env, DATABASE_URL: opts.db, GUICHET_KEYS__DIR: opts.keys };
  for (const k of Object.keys(env)) if (k.startsWith('GUICHET_') && k !== 'GUICHET_KEYS__DIR') delete env[k];
  delete env.REDIS_URL;
  const s = new Scenario('webauthn', { describe });
  await s.step('guichet user create', () => {
    execFileSync(opts.bin, ['user', 'create', '--email', email, '--password-stdin'], { input: password, env });
  });

  const chromium = await loadPlaywright(opts);
  const browser = await chromium.launch({ executablePath: opts.chromium || '/usr/bin/chromium', headless: true, args: CHROMIUM_ARGS });
  try {
    const ctx = await browser.newContext();
    const page = await ctx.newPage();
    page.setDefaultTimeout(TIMEOUT);
    // The page's own complaints, but not those of the requests this check blocks on purpose.
    page.on('console', (m) => {
      const t = m.text();
      if ((m.type() === 'warning' || m.type() === 'error') && !/ERR_FAILED|Failed to fetch/.test(t)) {
        console.log(`   console ${m.type()}: ${t}`);
      }
    });
    const cdp = await ctx.newCDPSession(page);
    await cdp.send('WebAuthn.enable');
    const { authenticatorId } = await cdp.send('WebAuthn.addVirtualAuthenticator', {
      options: {
        protocol: 'ctap2', transport: 'internal', hasResidentKey: true, hasUserVerification: true,
        isUserVerified: true, automaticPresenceSimulation: true,
      },
    });
    // With a passkey on the virtual authenticator, the sign-in page's conditional request
    // (autofill) completes by itself. Every request for passwordless options goes through one
    // handler: `block` (the default: pages load without it), `all`, or `button` (the
    // conditional request, which the page marks `conditional=1`, is blocked; `rewrite` may
    // change what the browser gets).
    let mode = 'block';
    let rewrite = null;
    await page.route('**/login/passkey/options', async (route) => {
      const conditional = (route.request().postData() || '').includes('conditional=1');
      if (mode === 'block' || (mode === 'button' && conditional)) return route.abort();
      if (!rewrite) return route.continue();
      const r = await route.fetch();
      const o = await r.json();
      rewrite(o);
      return route.fulfill({ response: r, json: o });
    });
    const signInWithPassword = async () => {
      await page.goto(`${base}/login?prompt=login`);
      await page.fill('#email', email);
      await page.fill('#password', password);
      await Promise.all([page.waitForNavigation(), page.click('#sign-in')]);
    };
    const signOut = async () => {
      await page.goto(`${base}/logout`);
      await Promise.all([page.waitForNavigation(), page.click('form[action="/logout"] button[type="submit"]')]);
    };

    await s.step('sign in with the password', async () => {
      await signInWithPassword();
      ensure(new URL(page.url()).pathname === '/account', `landed on ${page.url()}`);
    });
    await s.check('the email input offers passkeys (autocomplete="username webauthn")', async () => {
      const p2 = await ctx.newPage();
      await p2.goto(`${base}/login?prompt=login`);
      const ac = await p2.getAttribute('#email', 'autocomplete');
      await p2.close();
      ensure(ac === 'username webauthn', `autocomplete=${ac}`);
    });
    await s.step('register a passkey from the security page (#add-passkey)', async () => {
      await page.goto(`${base}/account/security`);
      await page.fill('#passkey-name', 'Virtual key');
      await Promise.all([page.waitForNavigation(), page.click('#add-passkey')]);
      const codes = await page.locator('#recovery-codes li').count();
      ensure(codes === 10, `recovery codes shown: ${codes}`);
    });
    await s.check('the security page lists it by name, and it can be renamed', async () => {
      await page.goto(`${base}/account/security`);
      ensure((await page.content()).includes('Virtual key'), 'name not listed');
      await page.fill('form.rename input[name="name"]', 'Renamed key');
      await Promise.all([page.waitForNavigation(), page.click('.rename-factor')]);
      ensure((await page.content()).includes('Renamed key'), 'not renamed');
    });
    await s.step('sign out', signOut);
    // A passwordless attempt with the button (the conditional request kept from starting).
    // Returns the status of the sign-in POST.
    const passwordlessWithButton = async (change) => {
      mode = 'button';
      rewrite = change || null;
      try {
        await page.goto(`${base}/login?prompt=login`);
        await page.waitForTimeout(300);
        // The form's POST (its response may be a redirect, which is no `response` event).
        const [req] = await Promise.all([
          page.waitForRequest((r) => r.url().endsWith('/login/passkey') && r.method() === 'POST'),
          page.click('#passkey-login'),
        ]);
        const resp = await req.response();
        const status = resp ? resp.status() : 0;
        // The navigation finishes before anything else starts (a redirect ends on /account).
        await page.waitForURL(status === 303 ? `${base}/account` : `${base}/login/passkey`);
        return status;
      } finally {
        mode = 'block';
        rewrite = null;
      }
    };
    await s.step('passwordless sign-in with the passkey (conditional UI on the sign-in page)', async () => {
      mode = 'all';
      try {
        await page.goto(`${base}/login`);
        await page.waitForURL(`${base}/account`);
      } finally {
        mode = 'block';
      }
      ensure((await page.textContent('#account')).includes(email), 'not signed in as the user');
    });
    await s.step('sign out, then passwordless again with the button (#passkey-login)', async () => {
      await signOut();
      const status = await passwordlessWithButton();
      ensure(status === 303, `status ${status}`);
      await page.goto(`${base}/account`);
      ensure((await page.textContent('#account')).includes(email), 'not signed in as the user');
    });
    await s.check('the sign-in is recorded with user verification (amr user)', async () => {
      await page.goto(`${base}/account/sessions`);
      const html = await page.content();
      ensure(/(hwk|swk)\+user\+mfa/.test(html), 'history does not show hwk/swk+user+mfa');
    });
    await s.step('sign out again', signOut);
    await s.step('password, then the security key as second factor (#use-security-key)', async () => {
      await signInWithPassword();
      ensure(new URL(page.url()).pathname === '/login/second-factor', `after the password: ${page.url()}`);
      await Promise.all([page.waitForURL(`${base}/account`), page.click('#use-security-key')]);
    });

    // Negative cases through the same authenticator.
    await s.step('sign out before the negative cases', signOut);
    let assertion = null;
    await s.step('an assertion for this browser\'s passwordless ceremony', async () => {
      // A page without the sign-in page's script (its conditional request would be pending).
      await page.goto(`${base}/password/reset`);
      mode = 'all';
      assertion = await page.evaluate(async () => {
        const csrf = document.querySelector('input[name="csrf_token"]').value;
        const r = await fetch('/login/passkey/options', {
          method: 'POST', headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
          body: 'csrf_token=' + encodeURIComponent(csrf),
        });
        const o = await r.json();
        const b = (s) => Uint8Array.from(atob(s.replace(/-/g, '+').replace(/_/g, '/') + '==='.slice((s.length + 3) % 4)), (c) => c.charCodeAt(0));
        const e = (buf) => btoa(String.fromCharCode(...new Uint8Array(buf))).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
        o.publicKey.challenge = b(o.publicKey.challenge);
        const c = await navigator.credentials.get({ publicKey: o.publicKey });
        return JSON.stringify({
          id: c.id, rawId: e(c.rawId), type: c.type, extensions: {},
          response: {
            authenticatorData: e(c.response.authenticatorData), clientDataJSON: e(c.response.clientDataJSON),
            signature: e(c.response.signature), userHandle: c.response.userHandle ? e(c.response.userHandle) : null,
          },
        });
      });
      mode = 'block';
      ensure(typeof assertion === 'string' && assertion.length > 100, 'no assertion');
    });
    const submit = async (p) => {
      await p.goto(`${base}/password/reset`);
      const csrf = await p.getAttribute('input[name="csrf_token"]', 'value');
      return p.request.post(`${base}/login/passkey`, { form: { csrf_token: csrf, credential: assertion, return_to: '/account' }, maxRedirects: 0 });
    };
    await s.check('refused in another browser\'s session (ceremony not begun there)', async () => {
      const other = await browser.newContext();
      const p2 = await other.newPage();
      const r = await submit(p2);
      await other.close();
      ensure(r.status() === 401, `status ${r.status()}`);
    });
    await s.check('accepted in the browser that began the ceremony', async () => {
      const r = await submit(page);
      ensure(r.status() === 303, `status ${r.status()}`);
    });
    await s.check('the same assertion again is refused (the ceremony is spent)', async () => {
      const r = await submit(page);
      ensure(r.status() === 401, `status ${r.status()}`);
    });
    await s.check('an authenticator that skipped user verification is refused', async () => {
      await cdp.send('WebAuthn.setUserVerified', { authenticatorId, isUserVerified: false });
      const status = await passwordlessWithButton((o) => {
        o.publicKey.userVerification = 'discouraged';
      });
      await cdp.send('WebAuthn.setUserVerified', { authenticatorId, isUserVerified: true });
      ensure(status === 401, `status ${status}`);
    });
    await s.check('a cloned authenticator (signature counter going back) is refused', async () => {
      const { credentials } = await cdp.send('WebAuthn.getCredentials', { authenticatorId });
      ensure(credentials.length === 1, `${credentials.length} credentials`);
      const copy = credentials[0];
      // The original is used once more (its counter moves on)...
      ensure((await passwordlessWithButton()) === 303, 'the original signs in');
      // ...then the copy, with the older counter, answers.
      await cdp.send('WebAuthn.removeCredential', { authenticatorId, credentialId: copy.credentialId });
      await cdp.send('WebAuthn.addCredential', { authenticatorId, credential: copy });
      const status = await passwordlessWithButton();
      ensure(status === 401, `status ${status}`);
    });
  } catch (e) {
    fail('webauthn: scenario crashed', describe(e));
  } finally {
    await browser.close().catch(() => {});
  }
}

let crashed = false;
try {
  await main();
} catch (e) {
  crashed = true;
  fail('browser_webauthn', describe(e));
}
console.log(`${results.passed} passed, ${results.failed} failed`);
process.exitCode = results.failed || crashed ? 1 : 0;
