#!/usr/bin/env node
// Black-box check of Guichet by the relying-party library openid-client v6
// (npm `openid-client@6`, by panva: the RP library certified alongside
// node-oidc-provider). Guichet is driven only over HTTP and through its CLI.
//
//   node conformance/openid_client.mjs --base http://127.0.0.1:PORT \
//        --email alice@example.com --password SECRET --bin target/debug/guichet
//
// The environment is the server's (DATABASE_URL, GUICHET_KEYS__DIR, ...): the
// script registers its clients with `guichet client create --json`.
// openid-client is imported from node_modules next to this file if there is
// one, else from --node-dir / $GUICHET_NODE_DIR / ~/.cache/guichet-node (where
// conformance/run installs it).
//
// Scenarios:
//   * rs256: confidential client, openid-client's default client authentication
//     (client_secret_post). Discovery; authorization URL with PKCE S256, state,
//     nonce; a scripted browser (fetch + cookie jar) signs in through the HTML
//     form; authorizationCodeGrant; ID token claims; userinfo; introspection;
//     refresh with rotation and refused reuse of the old refresh token;
//     single sign-on (second authorization without the form); revocation;
//     RP-initiated logout with id_token_hint back to post_logout_redirect_uri.
//   * es256, eddsa: clients registered with --id-token-signed-response-alg;
//     openid-client's non-repudiation checks verify the ID token signature
//     against the jwks_uri.
//   * public: --public client, client.None() authentication, PKCE only.
//   * client_credentials: clientCredentialsGrant; RFC 9068 access token.
//
// Prints `PASS name` / `FAIL name: reason` per check and ends with
// `N passed, M failed`; exits 1 if anything failed.

import { execFileSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

import { CheckError, ensure, fail, jsonish, pass, results, Scenario } from './checks.mjs';

const REDIRECT_URI = 'http://127.0.0.1:65000/cb';
const POST_LOGOUT_URI = 'http://127.0.0.1:65000/bye';
const SCOPE = 'openid email profile offline_access';
const HTTP_TIMEOUT_MS = 15000;

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
  for (const k of ['base', 'email', 'password', 'bin']) {
    if (!opts[k]) throw new Error(`missing --${k} (usage: --base URL --email E --password P --bin GUICHET [--node-dir DIR])`);
  }
  opts.base = opts.base.replace(/\/+$/, '');
  return opts;
}

// ---------------------------------------------------------------- results
/** Describes an exception, with the fields openid-client / oauth4webapi errors carry. */
function describe(e) {
  if (!(e instanceof Error)) return jsonish(e);
  const parts = [`${e.name}: ${e.message}`];
  if (e.code) parts.push(`code=${e.code}`);
  if (e.status) parts.push(`status=${e.status}`);
  if (e.error) parts.push(`error=${e.error}`);
  if (e.error_description) parts.push(`error_description=${jsonish(e.error_description)}`);
  if (e.cause !== undefined) {
    const c = e.cause;
    if (c instanceof Error) parts.push(`cause=(${describe(c)})`);
    else if (typeof Response !== 'undefined' && c instanceof Response) parts.push(`cause=HTTP ${c.status}`);
    else parts.push(`cause=${jsonish(c)}`);
  }
  return parts.join(' ');
}

/** Runs one scenario; an exception escaping it counts as one failure and the next scenario still runs. */
async function scenario(title, fn) {
  try {
    await fn(new Scenario(title, { describe }));
  } catch (e) {
    fail(`${title}: scenario crashed`, `${describe(e)}${e?.stack ? ` ${e.stack.split('\n').slice(1, 3).join(' ')}` : ''}`);
  }
}

// ---------------------------------------------------------------- helpers
function b64urlJson(part) {
  return JSON.parse(Buffer.from(part, 'base64url').toString('utf8'));
}

function jwtParts(jwt) {
  ensure(typeof jwt === 'string', `not a string: ${jsonish(jwt)}`);
  const parts = jwt.split('.');
  ensure(parts.length === 3, `not a compact JWS (${parts.length} parts)`);
  return { header: b64urlJson(parts[0]), payload: b64urlJson(parts[1]) };
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

function parseAttrs(s) {
  const attrs = {};
  const re = /([^\s"'<>\/=]+)(?:\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s"'=<>`]+)))?/g;
  let m;
  while ((m = re.exec(s))) {
    const v = m[2] ?? m[3] ?? m[4] ?? '';
    attrs[m[1].toLowerCase()] = htmlUnescape(v);
  }
  return attrs;
}

/** The POST forms of an HTML page: [{ action, fields: {name: value}, inputs: [attrs] }]. */
function postForms(html) {
  const forms = [];
  const formRe = /<form\b([^>]*)>([\s\S]*?)<\/form>/gi;
  let m;
  while ((m = formRe.exec(html))) {
    const attrs = parseAttrs(m[1]);
    if ((attrs.method || 'get').toLowerCase() !== 'post') continue;
    const inputs = [];
    const fields = {};
    const inputRe = /<input\b([^>]*)>/gi;
    let im;
    while ((im = inputRe.exec(m[2]))) {
      const a = parseAttrs(im[1]);
      inputs.push(a);
      if (a.name) fields[a.name] = a.value ?? '';
    }
    forms.push({ action: attrs.action ?? '', fields, inputs });
  }
  return forms;
}

/** The readable text of an HTML page (its error message first, when it shows one). */
function pageText(html) {
  const alert = /<[^>]*role="alert"[^>]*>([\s\S]*?)<\//i.exec(html);
  const text = (s) => htmlUnescape(s.replace(/<(script|style)\b[\s\S]*?<\/\1>/gi, ' ').replace(/<[^>]*>/g, ' ')).replace(/\s+/g, ' ').trim();
  return alert ? `[alert] ${text(alert[1])}` : text(html);
}

function describeResponse(r) {
  const body = r.text ? ` body=${JSON.stringify(pageText(r.text).slice(0, 300))}` : '';
  return `${r.method} ${r.url} -> ${r.status}${r.location ? ` Location: ${r.location}` : ''}${body}`;
}

/** A scripted browser: fetch with redirect: 'manual' and a minimal cookie jar (one host). */
class Browser {
  constructor() {
    this.jar = new Map(); // `${name}\n${path}` -> { name, value, path, secure }
  }

  cookieHeader(url) {
    const out = [];
    for (const c of this.jar.values()) {
      if (c.secure && url.protocol !== 'https:') continue;
      const p = url.pathname;
      const inPath = p === c.path || (p.startsWith(c.path) && (c.path.endsWith('/') || p[c.path.length] === '/'));
      if (inPath) out.push(`${c.name}=${c.value}`);
    }
    return out.join('; ');
  }

  store(url, res) {
    for (const line of res.headers.getSetCookie()) {
      const [pair, ...attrParts] = line.split(';');
      const eq = pair.indexOf('=');
      if (eq <= 0) continue;
      const name = pair.slice(0, eq).trim();
      const value = pair.slice(eq + 1).trim().replace(/^"(.*)"$/, '$1');
      let path = null;
      let secure = false;
      let expired = false;
      for (const a of attrParts) {
        const [k, ...v] = a.split('=');
        const key = k.trim().toLowerCase();
        const val = v.join('=').trim();
        if (key === 'path' && val.startsWith('/')) path = val;
        else if (key === 'secure') secure = true;
        else if (key === 'max-age' && /^-?\d+$/.test(val) && Number(val) <= 0) expired = true;
        else if (key === 'expires' && Date.parse(val) <= Date.now()) expired = true;
      }
      if (path === null) {
        const dir = url.pathname.slice(0, url.pathname.lastIndexOf('/'));
        path = dir || '/';
      }
      const key = `${name}\n${path}`;
      if (expired) this.jar.delete(key);
      else this.jar.set(key, { name, value, path, secure });
    }
  }

  async request(method, url, form) {
    const u = new URL(url);
    const headers = { accept: 'text/html,application/xhtml+xml,*/*;q=0.8', 'user-agent': 'guichet-conformance (openid-client check)' };
    const cookie = this.cookieHeader(u);
    if (cookie) headers.cookie = cookie;
    const init = { method, headers, redirect: 'manual', signal: AbortSignal.timeout(HTTP_TIMEOUT_MS) };
    if (form !== undefined) {
      headers['content-type'] = 'application/x-www-form-urlencoded';
      headers.origin = u.origin;
      init.body = new URLSearchParams(form).toString();
    }
    const res = await fetch(u, init);
    this.store(u, res);
    const loc = res.headers.get('location');
    return {
      method,
      url: u.href,
      status: res.status,
      location: loc === null ? null : new URL(loc, u).href,
      text: await res.text(),
    };
  }

  get(url) {
    return this.request('GET', url);
  }

  post(url, form) {
    return this.request('POST', url, form);
  }
}

function expectRedirect(r, status, prefix) {
  ensure(
    r.status === status && r.location !== null && r.location.startsWith(prefix),
    `expected ${status} to ${prefix}...; got ${describeResponse(r)}`,
  );
  return r.location;
}

// ---------------------------------------------------------------- main
async function loadOpenidClient(opts) {
  try {
    return await import('openid-client');
  } catch (e) {
    if (e?.code !== 'ERR_MODULE_NOT_FOUND') throw e;
  }
  const dir = opts['node-dir'] || process.env.GUICHET_NODE_DIR || join(homedir(), '.cache', 'guichet-node');
  const require = createRequire(join(dir, 'package.json'));
  let path;
  try {
    path = require.resolve('openid-client');
  } catch {
    throw new Error(`openid-client is not installed next to this script nor in ${dir} (npm install openid-client@6 there)`);
  }
  return import(pathToFileURL(path).href);
}

async function main() {
  const opts = parseArgs(process.argv.slice(2));
  const client = await loadOpenidClient(opts);
  const BASE = opts.base;
  const { email: EMAIL, password: PASSWORD, bin: BIN } = opts;
  const RUN = `${process.pid}-${Date.now().toString(36)}`;

  /** `guichet client create ... --json` -> parsed JSON. */
  function createClient(name, extra) {
    const args = ['client', 'create', '--name', `${name} ${RUN}`, ...extra, '--json'];
    let out;
    try {
      out = execFileSync(BIN, args, { env: process.env, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 60000 });
    } catch (e) {
      throw new CheckError(`${BIN} ${args.join(' ')} failed (status ${e.status}): ${e.stderr || e.message}`);
    }
    let json;
    try {
      json = JSON.parse(out);
    } catch (e) {
      throw new CheckError(`client create --json did not print JSON (${e.message}): ${out}`);
    }
    ensure(typeof json.client_id === 'string' && json.client_id, `no client_id in ${out}`);
    return json;
  }

  const browserClient = (name, extra = []) =>
    createClient(name, [
      '--first-party',
      '--redirect-uri', REDIRECT_URI,
      '--post-logout-redirect-uri', POST_LOGOUT_URI,
      ...extra,
    ]);

  /** discovery(), accepting the plain-http issuer of the throwaway server. */
  async function discover(clientId, metadata, auth) {
    const config = await client.discovery(new URL(BASE), clientId, metadata, auth, {
      execute: [client.allowInsecureRequests],
      timeout: HTTP_TIMEOUT_MS / 1000,
    });
    const md = config.serverMetadata();
    ensure(md.issuer === BASE, `issuer ${jsonish(md.issuer)}, expected ${BASE}`);
    return config;
  }

  /** Authorization URL with PKCE S256, state and nonce. */
  async function authorizationRequest(config, extra = {}) {
    const pkceCodeVerifier = client.randomPKCECodeVerifier();
    const code_challenge = await client.calculatePKCECodeChallenge(pkceCodeVerifier);
    const state = client.randomState();
    const nonce = client.randomNonce();
    const url = client.buildAuthorizationUrl(config, {
      redirect_uri: REDIRECT_URI,
      scope: SCOPE,
      code_challenge,
      code_challenge_method: 'S256',
      state,
      nonce,
      ...extra,
    });
    return { url, pkceCodeVerifier, state, nonce };
  }

  /** The browser leg: authorization URL -> /login form -> POST -> /authorize/resume -> redirect_uri. */
  async function signInThroughForm(browser, authUrl) {
    const r1 = await browser.get(authUrl);
    const loginUrl = expectRedirect(r1, 303, `${BASE}/login?`);
    const r2 = await browser.get(loginUrl);
    ensure(r2.status === 200, `GET login page: ${describeResponse(r2)}`);
    const form = postForms(r2.text).find((f) => new URL(f.action, loginUrl).href === `${BASE}/login`);
    ensure(form, `no <form method="post" action="/login"> in ${JSON.stringify(r2.text.slice(0, 500))}`);
    for (const f of ['email', 'password', 'csrf_token', 'return_to']) {
      ensure(Object.hasOwn(form.fields, f), `login form lacks input '${f}' (has ${Object.keys(form.fields).join(', ')})`);
    }
    ensure(form.fields.csrf_token, 'login form csrf_token is empty');
    ensure(form.fields.return_to.startsWith('/'), `return_to is not a path after unescaping: ${jsonish(form.fields.return_to)}`);
    const r3 = await browser.post(new URL(form.action, loginUrl).href, { ...form.fields, email: EMAIL, password: PASSWORD });
    const resumeUrl = expectRedirect(r3, 303, `${BASE}/authorize/resume?`);
    const r4 = await browser.get(resumeUrl);
    return callbackFrom(await consentIfAsked(browser, r4, resumeUrl));
  }

  /** First-party clients are asked for consent once, for offline_access (OIDC Core §11):
   *  allow it on the consent page when it is shown. */
  async function consentIfAsked(browser, r, pageUrl) {
    if (r.status !== 200) return r;
    const form = postForms(r.text).find((f) => new URL(f.action, pageUrl).href === `${BASE}/authorize/consent`);
    ensure(form, `expected a redirect or the consent page; got ${describeResponse(r)}`);
    ensure(/offline access/.test(r.text), 'the consent page names offline access');
    for (const f of ['csrf_token', 'interaction']) ensure(form.fields[f], `consent form lacks '${f}'`);
    return browser.post(new URL(form.action, pageUrl).href, { ...form.fields, decision: 'allow' });
  }

  function callbackFrom(r) {
    const cb = expectRedirect(r, 303, `${REDIRECT_URI}?`);
    const q = new URL(cb).searchParams;
    ensure(!q.has('error'), `authorization error: ${cb}`);
    for (const p of ['code', 'state', 'iss']) ensure(q.get(p), `callback lacks ${p}: ${cb}`);
    ensure(q.get('iss') === BASE, `iss=${q.get('iss')}, expected ${BASE}`);
    return cb;
  }

  async function codeGrant(config, req, callback) {
    return client.authorizationCodeGrant(config, new URL(callback), {
      pkceCodeVerifier: req.pkceCodeVerifier,
      expectedState: req.state,
      expectedNonce: req.nonce,
    });
  }

  let expectedSub = null; // the user's sub, the same for every first-party client
  const flowStart = Math.floor(Date.now() / 1000) - 5;

  function checkIdToken(tokens, req, alg) {
    const claims = tokens.claims();
    ensure(claims, 'no ID token (tokens.claims() is undefined)');
    ensure(typeof claims.sub === 'string' && claims.sub, `sub ${jsonish(claims.sub)}`);
    if (expectedSub !== null) ensure(claims.sub === expectedSub, `sub ${claims.sub}, expected ${expectedSub} (as for the first client)`);
    ensure(claims.email === EMAIL, `email ${jsonish(claims.email)}, expected ${EMAIL}`);
    ensure(claims.nonce === req.nonce, `nonce ${jsonish(claims.nonce)}, expected ${req.nonce}`);
    const now = Math.floor(Date.now() / 1000);
    ensure(
      Number.isInteger(claims.auth_time) && claims.auth_time >= flowStart && claims.auth_time <= now + 5,
      `auth_time ${jsonish(claims.auth_time)} not an integer within [${flowStart}, ${now + 5}]`,
    );
    const { header } = jwtParts(tokens.id_token);
    ensure(header.alg === alg, `ID token header alg ${jsonish(header.alg)}, expected ${alg}`);
    ensure(header.kid, `ID token header has no kid: ${jsonish(header)}`);
    return claims;
  }

  function checkTokenResponse(tokens, { refresh }) {
    ensure(typeof tokens.access_token === 'string' && tokens.access_token, 'no access_token');
    ensure(tokens.token_type === 'bearer', `token_type ${jsonish(tokens.token_type)} (openid-client lower-cases it)`);
    ensure(Number.isInteger(tokens.expiresIn()) && tokens.expiresIn() > 0, `expires_in ${jsonish(tokens.expires_in)}`);
    if (refresh) ensure(typeof tokens.refresh_token === 'string' && tokens.refresh_token, 'no refresh_token (scope had offline_access)');
  }

  // ============================================================ rs256: the full life cycle
  await scenario('rs256', async (s) => {
    const reg = await s.step('client create (confidential, RS256)', () => {
      const r = browserClient('openid-client rs256');
      ensure(typeof r.client_secret === 'string' && r.client_secret, `no client_secret in ${jsonish(r)}`);
      return r;
    });
    // Only client_id and client_secret: openid-client's default client authentication (client_secret_post).
    const config = await s.step('discovery', () => discover(reg.client_id, reg.client_secret));
    await s.check('discovery metadata (S256, endpoints, RFC 9207 iss)', () => {
      const md = config.serverMetadata();
      ensure(md.supportsPKCE('S256'), `code_challenge_methods_supported ${jsonish(md.code_challenge_methods_supported)}`);
      for (const k of ['authorization_endpoint', 'token_endpoint', 'userinfo_endpoint', 'jwks_uri', 'introspection_endpoint', 'revocation_endpoint', 'end_session_endpoint']) {
        ensure(typeof md[k] === 'string' && md[k].startsWith(`${BASE}/`), `${k} ${jsonish(md[k])}`);
      }
      ensure(md.authorization_response_iss_parameter_supported === true, 'authorization_response_iss_parameter_supported is not true');
      const methods = md.token_endpoint_auth_methods_supported;
      ensure(Array.isArray(methods) && methods.includes('client_secret_post'), `token_endpoint_auth_methods_supported ${jsonish(methods)} lacks client_secret_post`);
    });
    const req = await s.step('authorization URL (PKCE S256, state, nonce)', async () => {
      const r = await authorizationRequest(config);
      ensure(r.url.href.startsWith(`${config.serverMetadata().authorization_endpoint}?`), `URL ${r.url.href}`);
      return r;
    });
    const browser = new Browser();
    const callback = await s.step('browser sign-in through /login (303, form, 303 resume, 303 to redirect_uri)', () =>
      signInThroughForm(browser, req.url.href),
    );
    const tokens = await s.step('authorizationCodeGrant (client_secret_post)', () => codeGrant(config, req, callback));
    await s.check('token response: access_token, refresh_token, bearer', () => checkTokenResponse(tokens, { refresh: true }));
    const claims = await s.step('ID token claims (sub, email, auth_time, nonce; alg RS256)', () => checkIdToken(tokens, req, 'RS256'));
    expectedSub = claims?.sub ?? null;
    await s.check('fetchUserInfo', async () => {
      const info = await client.fetchUserInfo(config, tokens.access_token, claims.sub);
      ensure(info.sub === claims.sub, `sub ${jsonish(info.sub)}`);
      ensure(info.email === EMAIL, `email ${jsonish(info.email)}, expected ${EMAIL}`);
    });
    await s.check('tokenIntrospection of the access token: active', async () => {
      const r = await client.tokenIntrospection(config, tokens.access_token);
      ensure(r.active === true, `active ${jsonish(r.active)}: ${jsonish(r)}`);
      ensure(r.sub === claims.sub, `sub ${jsonish(r.sub)}`);
      ensure(r.client_id === undefined || r.client_id === reg.client_id, `client_id ${jsonish(r.client_id)}`);
    });
    const refreshed = await s.step('refreshTokenGrant', async () => {
      const t = await client.refreshTokenGrant(config, tokens.refresh_token);
      checkTokenResponse(t, { refresh: true });
      return t;
    });
    await s.check('refresh token rotated (new one differs)', () => {
      ensure(refreshed.refresh_token !== tokens.refresh_token, 'the refresh token came back unchanged');
      ensure(refreshed.access_token !== tokens.access_token, 'the access token came back unchanged');
      const c = refreshed.claims();
      if (c) ensure(c.sub === claims.sub, `refreshed ID token sub ${jsonish(c.sub)}`);
    });
    await s.check('tokenIntrospection of the refreshed access token: active', async () => {
      const r = await client.tokenIntrospection(config, refreshed.access_token);
      ensure(r.active === true, `active ${jsonish(r.active)}: ${jsonish(r)}`);
    });
    await s.check('reusing the old refresh token fails with invalid_grant', async () => {
      let t;
      try {
        t = await client.refreshTokenGrant(config, tokens.refresh_token);
      } catch (e) {
        ensure(e instanceof client.ResponseBodyError, `expected ResponseBodyError, got ${describe(e)}`);
        ensure(e.error === 'invalid_grant', `error ${jsonish(e.error)} (${describe(e)})`);
        return;
      }
      throw new CheckError(`the old refresh token was accepted again: ${jsonish({ ...t })}`);
    });

    // Reuse revokes the whole token family; a fresh authorization (same browser
    // session: single sign-on, no form) gives live tokens for the rest.
    const req2 = await s.step('authorization URL (second)', () => authorizationRequest(config));
    const callback2 = await s.step('single sign-on: second authorization goes straight to redirect_uri', async () => {
      const r = await browser.get(req2.url.href);
      return callbackFrom(r);
    });
    const tokens2 = await s.step('authorizationCodeGrant (second)', async () => {
      const t = await codeGrant(config, req2, callback2);
      checkTokenResponse(t, { refresh: true });
      checkIdToken(t, req2, 'RS256');
      return t;
    });
    await s.check('tokenIntrospection of a live refresh token: active', async () => {
      const r = await client.tokenIntrospection(config, tokens2.refresh_token);
      ensure(r.active === true, `active ${jsonish(r.active)}: ${jsonish(r)}`);
    });
    await s.check('tokenRevocation of the refresh token, then introspection: inactive', async () => {
      await client.tokenRevocation(config, tokens2.refresh_token);
      const r = await client.tokenIntrospection(config, tokens2.refresh_token);
      ensure(r.active === false, `active ${jsonish(r.active)} after revocation: ${jsonish(r)}`);
    });
    await s.check('refreshTokenGrant with the revoked refresh token fails with invalid_grant', async () => {
      try {
        await client.refreshTokenGrant(config, tokens2.refresh_token);
      } catch (e) {
        ensure(e instanceof client.ResponseBodyError && e.error === 'invalid_grant', describe(e));
        return;
      }
      throw new CheckError('the revoked refresh token was accepted');
    });
    await s.step('buildEndSessionUrl + GET: 303 to post_logout_redirect_uri with state', async () => {
      const url = client.buildEndSessionUrl(config, {
        id_token_hint: tokens2.id_token,
        post_logout_redirect_uri: POST_LOGOUT_URI,
        state: 'bye-state',
      });
      ensure(url.href.startsWith(`${config.serverMetadata().end_session_endpoint}?`), `URL ${url.href}`);
      const r = await browser.get(url.href);
      ensure(
        r.status === 303 && r.location === `${POST_LOGOUT_URI}?state=bye-state`,
        `expected 303 to ${POST_LOGOUT_URI}?state=bye-state; got ${describeResponse(r)}`,
      );
    });
    await s.check('after logout, an authorization request asks to sign in again', async () => {
      const r3 = await authorizationRequest(config);
      const r = await browser.get(r3.url.href);
      expectRedirect(r, 303, `${BASE}/login?`);
    });
  });

  // ============================================================ es256 / eddsa: other ID token algs
  for (const alg of ['ES256', 'EdDSA']) await scenario(alg.toLowerCase(), async (s) => {
    const reg = await s.step(`client create --id-token-signed-response-alg ${alg}`, () =>
      browserClient(`openid-client ${alg}`, ['--id-token-signed-response-alg', alg]),
    );
    const config = await s.step('discovery (id_token_signed_response_alg in the client metadata)', async () => {
      const md = { client_secret: reg.client_secret, id_token_signed_response_alg: alg };
      const c = await discover(reg.client_id, md);
      const algs = c.serverMetadata().id_token_signing_alg_values_supported;
      ensure(Array.isArray(algs) && algs.includes(alg), `id_token_signing_alg_values_supported ${jsonish(algs)} lacks ${alg}`);
      // openid-client then verifies ID token signatures against jwks_uri.
      client.enableNonRepudiationChecks(c);
      return c;
    });
    const req = await s.step('authorization URL', () => authorizationRequest(config));
    const callback = await s.step('browser sign-in through /login', () => signInThroughForm(new Browser(), req.url.href));
    const tokens = await s.step('authorizationCodeGrant (ID token signature verified against jwks_uri)', () =>
      codeGrant(config, req, callback),
    );
    await s.check(`ID token claims; header alg ${alg}`, () => {
      checkTokenResponse(tokens, { refresh: true });
      checkIdToken(tokens, req, alg);
    });
    await s.check(`access token signed with ${alg} too`, () => {
      const { header } = jwtParts(tokens.access_token);
      ensure(header.alg === alg, `access token header alg ${jsonish(header.alg)}, expected ${alg}`);
    });
    await s.check('fetchUserInfo', async () => {
      const info = await client.fetchUserInfo(config, tokens.access_token, tokens.claims().sub);
      ensure(info.email === EMAIL, `email ${jsonish(info.email)}`);
    });
    await s.check('refreshTokenGrant (refreshed ID token verified too)', async () => {
      const t = await client.refreshTokenGrant(config, tokens.refresh_token);
      checkTokenResponse(t, { refresh: true });
      if (t.id_token) ensure(jwtParts(t.id_token).header.alg === alg, 'refreshed ID token alg');
    });
  });

  // ============================================================ public client
  await scenario('public', async (s) => {
    const reg = await s.step('client create --public', () => {
      const r = browserClient('openid-client public', ['--public']);
      ensure(!r.client_secret, `a public client got a client_secret: ${jsonish(r)}`);
      return r;
    });
    const config = await s.step('discovery with client.None()', () => discover(reg.client_id, undefined, client.None()));
    const req = await s.step('authorization URL', () => authorizationRequest(config));
    const callback = await s.step('browser sign-in through /login', () => signInThroughForm(new Browser(), req.url.href));
    const tokens = await s.step('authorizationCodeGrant (no client authentication, PKCE)', () => codeGrant(config, req, callback));
    await s.check('ID token claims (sub, email, auth_time, nonce; alg RS256)', () => {
      checkTokenResponse(tokens, { refresh: false });
      checkIdToken(tokens, req, 'RS256');
    });
    await s.check('fetchUserInfo', async () => {
      const info = await client.fetchUserInfo(config, tokens.access_token, tokens.claims().sub);
      ensure(info.email === EMAIL, `email ${jsonish(info.email)}`);
    });
    await s.check('code exchange without the PKCE verifier is refused', async () => {
      const req2 = await authorizationRequest(config);
      const cb = await signInThroughForm(new Browser(), req2.url.href);
      try {
        await client.authorizationCodeGrant(config, new URL(cb), {
          pkceCodeVerifier: client.randomPKCECodeVerifier(), // not the one behind code_challenge
          expectedState: req2.state,
          expectedNonce: req2.nonce,
        });
      } catch (e) {
        ensure(e instanceof client.ResponseBodyError && e.error === 'invalid_grant', describe(e));
        return;
      }
      throw new CheckError('a wrong code_verifier was accepted');
    });
  });

  // ============================================================ client_credentials
  await scenario('client_credentials', async (s) => {
    const reg = await s.step('client create --grant client_credentials', () => {
      const r = createClient('openid-client service', ['--grant', 'client_credentials']);
      ensure(typeof r.client_secret === 'string' && r.client_secret, `no client_secret in ${jsonish(r)}`);
      return r;
    });
    const config = await s.step('discovery', () => discover(reg.client_id, reg.client_secret));
    const tokens = await s.step('clientCredentialsGrant', () => client.clientCredentialsGrant(config));
    await s.check('access token: JWT with typ at+jwt (RFC 9068), no refresh or ID token', () => {
      ensure(typeof tokens.access_token === 'string', 'no access_token');
      ensure(tokens.token_type === 'bearer', `token_type ${jsonish(tokens.token_type)}`);
      const { header, payload } = jwtParts(tokens.access_token);
      ensure(typeof header.typ === 'string' && ['at+jwt', 'application/at+jwt'].includes(header.typ.toLowerCase()), `typ ${jsonish(header.typ)}`);
      ensure(payload.iss === BASE, `iss ${jsonish(payload.iss)}`);
      ensure(payload.client_id === reg.client_id, `client_id ${jsonish(payload.client_id)}`);
      ensure(tokens.refresh_token === undefined, 'a refresh_token was issued');
      ensure(tokens.id_token === undefined, 'an id_token was issued');
    });
    await s.check('tokenIntrospection of the access token: active', async () => {
      const r = await client.tokenIntrospection(config, tokens.access_token);
      ensure(r.active === true, `active ${jsonish(r.active)}: ${jsonish(r)}`);
    });
  });
}

let crashed = false;
try {
  await main();
} catch (e) {
  crashed = true;
  fail('openid_client.mjs', `crashed: ${describe(e)}${e?.stack ? ` ${e.stack.split('\n').slice(1, 4).join(' ')}` : ''}`);
}
console.log(`${results.passed} passed, ${results.failed} failed`);
process.exitCode = results.failed || crashed ? 1 : 0;
