// The peer of benches/side_by_side.sh: node-oidc-provider 9 in one Node process, configured
// like Guichet for the endpoints the benchmark measures.
//
//   node benches/peer/provider.mjs --port P --node-dir DIR --clients FILE --email E --password P
//
// --node-dir: where `npm install oidc-provider@9` was run (the package is resolved from there).
// --clients:  a JSON file written by side_by_side.sh:
//             { "cc_rs256": {id, secret}, "cc_es256": {id, secret}, "web": {id, secret, redirect_uri} }
//
// Equivalences with Guichet (what side_by_side.sh compares):
// - keys: one RS256 (RSA 2048) and one ES256 (P-256) signing key, generated at start;
// - client_secret_basic confidential clients;
// - client_credentials access tokens are JWTs (RFC 9068) signed RS256 or ES256 per client:
//   features.resourceIndicators with accessTokenFormat 'jwt' (without it they are opaque);
// - code flow with PKCE S256, a first-party client (no consent page: the grant is created by
//   loadExistingGrant), a refresh token without offline_access (issueRefreshToken), rotated on
//   every use (rotateRefreshToken), ending with the session like Guichet's;
// - introspection and revocation enabled; userinfo as default (opaque access tokens: node-oidc-
//   provider serves userinfo for its own opaque tokens only, and introspects only those);
// - the sign-in form checks the password with a plain string compare (Guichet runs argon2id);
// - storage: the built-in memory adapter (an in-process LRU of 1000 entries); Guichet writes to
//   SQLite on disk.
// Differences are printed by side_by_side.sh next to the results.
import { createRequire } from 'node:module';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { pathToFileURL } from 'node:url';

const { values: args } = parseArgs({
  options: {
    port: { type: 'string' },
    'node-dir': { type: 'string' },
    clients: { type: 'string' },
    email: { type: 'string' },
    password: { type: 'string' },
  },
});
for (const k of ['port', 'node-dir', 'clients', 'email', 'password']) {
  if (!args[k]) {
    console.error(`provider.mjs: --${k} is required`);
    process.exit(2);
  }
}

const require = createRequire(path.join(path.resolve(args['node-dir']), 'package.json'));
const { default: Provider } = await import(pathToFileURL(require.resolve('oidc-provider')).href);

const ISSUER = `http://127.0.0.1:${args.port}`;
const clients = JSON.parse(fs.readFileSync(args.clients, 'utf8'));
const RESOURCE = 'urn:guichet-bench:api';
const ACCOUNT = {
  id: 'alice',
  email: args.email,
  password: args.password,
  name: 'Alice',
};

function signingKey(type, options, alg) {
  const { privateKey } = crypto.generateKeyPairSync(type, options);
  const jwk = privateKey.export({ format: 'jwk' });
  return { ...jwk, alg, use: 'sig', kid: `${alg.toLowerCase()}-${crypto.randomBytes(6).toString('hex')}` };
}
const jwks = {
  keys: [
    signingKey('rsa', { modulusLength: 2048 }, 'RS256'),
    signingKey('ec', { namedCurve: 'P-256' }, 'ES256'),
  ],
};

// client_id -> access-token signing alg of the client_credentials clients
const ccAlg = new Map([
  [clients.cc_rs256.id, 'RS256'],
  [clients.cc_es256.id, 'ES256'],
]);

const ccClient = (c) => ({
  client_id: c.id,
  client_secret: c.secret,
  grant_types: ['client_credentials'],
  response_types: [],
  redirect_uris: [],
  token_endpoint_auth_method: 'client_secret_basic',
});

const configuration = {
  clients: [
    ccClient(clients.cc_rs256),
    ccClient(clients.cc_es256),
    {
      client_id: clients.web.id,
      client_secret: clients.web.secret,
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
      redirect_uris: [clients.web.redirect_uri],
      token_endpoint_auth_method: 'client_secret_basic',
      id_token_signed_response_alg: 'RS256',
    },
  ],
  jwks,
  cookies: { keys: [crypto.randomBytes(32).toString('hex')] },
  claims: {
    openid: ['sub'],
    email: ['email', 'email_verified'],
    profile: ['name'],
  },
  scopes: ['openid', 'offline_access', 'email', 'profile'],
  features: {
    devInteractions: { enabled: false },
    clientCredentials: { enabled: true },
    introspection: { enabled: true },
    revocation: { enabled: true },
    userinfo: { enabled: true },
    resourceIndicators: {
      enabled: true,
      // client_credentials clients get JWT access tokens for the bench API; the code flow keeps
      // the default (an opaque access token for userinfo).
      defaultResource: (ctx, client) => (ccAlg.has(client.clientId) ? RESOURCE : undefined),
      useGrantedResource: () => false,
      getResourceServerInfo: (ctx, resourceIndicator, client) => {
        if (resourceIndicator !== RESOURCE || !ccAlg.has(client.clientId)) {
          throw new Provider.errors.InvalidTarget();
        }
        return {
          scope: 'api',
          audience: RESOURCE,
          accessTokenTTL: 600,
          accessTokenFormat: 'jwt',
          jwt: { sign: { alg: ccAlg.get(client.clientId) } },
        };
      },
    },
  },
  pkce: { required: () => false }, // the benchmark sends S256 anyway, as to Guichet
  issueRefreshToken: async (ctx, client) => client.grantTypeAllowed('refresh_token'),
  rotateRefreshToken: () => true,
  // First-party client: no consent page (Guichet skips it for --first-party clients).
  loadExistingGrant: async (ctx) => {
    const grantId = ctx.oidc.result?.consent?.grantId
      || ctx.oidc.session.grantIdFor(ctx.oidc.client.clientId);
    if (grantId) {
      return ctx.oidc.provider.Grant.find(grantId);
    }
    if (ctx.oidc.client.clientId === clients.web.id) {
      const grant = new ctx.oidc.provider.Grant({
        clientId: ctx.oidc.client.clientId,
        accountId: ctx.oidc.session.accountId,
      });
      grant.addOIDCScope('openid email profile offline_access');
      await grant.save();
      return grant;
    }
    return undefined;
  },
  findAccount: async (ctx, sub) => {
    if (sub !== ACCOUNT.id) return undefined;
    return {
      accountId: sub,
      claims: async () => ({
        sub, email: ACCOUNT.email, email_verified: true, name: ACCOUNT.name,
      }),
    };
  },
  interactions: { url: (ctx, interaction) => `/interaction/${interaction.uid}` },
  ttl: {
    AccessToken: 600,
    ClientCredentials: 600,
    AuthorizationCode: 60,
    IdToken: 3600,
    RefreshToken: 30 * 24 * 3600,
    Interaction: 1800,
    Session: 28800,
    Grant: 30 * 24 * 3600,
  },
  renderError: async (ctx, out) => {
    ctx.type = 'application/json';
    ctx.body = JSON.stringify(out);
  },
};

const provider = new Provider(ISSUER, configuration);
provider.on('server_error', (ctx, err) => console.error('server_error', err));
// The detail of a refused grant (the answer says only "grant request is invalid").
provider.on('grant.error', (ctx, err) => console.error(`grant.error ${err.error}: ${err.error_detail || err.message}`));

const esc = (s) => String(s).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
const loginPage = (uid, message = '') => `<!doctype html><html><head><title>Sign in</title></head><body>
<h1>Sign in</h1>${message ? `<p>${esc(message)}</p>` : ''}
<form method="post" action="/interaction/${esc(uid)}/login">
<input type="email" name="email" autocomplete="username">
<input type="password" name="password" autocomplete="current-password">
<button type="submit">Sign in</button>
</form></body></html>`;

function send(res, status, body, type = 'text/html; charset=utf-8') {
  res.statusCode = status;
  res.setHeader('Content-Type', type);
  res.setHeader('Cache-Control', 'no-store');
  res.end(body);
}

async function readForm(req) {
  const chunks = [];
  let size = 0;
  for await (const chunk of req) {
    size += chunk.length;
    if (size > 65536) throw new Error('body too large');
    chunks.push(chunk);
  }
  return new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
}

// GET /interaction/:uid -> the sign-in form; POST /interaction/:uid/login -> check, 303 back.
async function interaction(req, res) {
  const url = new URL(req.url, ISSUER);
  const m = url.pathname.match(/^\/interaction\/([^/]+)(\/login)?$/);
  if (!m) return send(res, 404, 'not found', 'text/plain');
  const details = await provider.interactionDetails(req, res);
  if (details.uid !== m[1]) return send(res, 400, 'interaction mismatch', 'text/plain');
  if (req.method === 'GET' && !m[2]) {
    if (details.prompt.name === 'login') return send(res, 200, loginPage(details.uid));
    // Not expected (loadExistingGrant grants the first-party client); grant what is asked.
    const grant = new provider.Grant({ accountId: details.session.accountId, clientId: details.params.client_id });
    if (details.prompt.details.missingOIDCScope) grant.addOIDCScope(details.prompt.details.missingOIDCScope.join(' '));
    const grantId = await grant.save();
    return provider.interactionFinished(req, res, { consent: { grantId } }, { mergeWithLastSubmission: true });
  }
  if (req.method === 'POST' && m[2]) {
    const form = await readForm(req);
    // A plain compare (Guichet verifies an argon2id hash here).
    if (form.get('email') !== ACCOUNT.email || form.get('password') !== ACCOUNT.password) {
      return send(res, 401, loginPage(details.uid, 'Invalid email or password.'));
    }
    return provider.interactionFinished(req, res, { login: { accountId: ACCOUNT.id } }, { mergeWithLastSubmission: false });
  }
  return send(res, 405, 'method not allowed', 'text/plain');
}

const callback = provider.callback();
const server = http.createServer((req, res) => {
  if (req.url.startsWith('/interaction/')) {
    interaction(req, res).catch((err) => {
      console.error('interaction error', err);
      if (!res.headersSent) send(res, err.statusCode || 500, String(err.message || err), 'text/plain');
      else res.end();
    });
  } else if (req.url === '/healthz') {
    send(res, 200, 'ok', 'text/plain');
  } else {
    callback(req, res);
  }
});
server.keepAliveTimeout = 65000;
server.listen(Number(args.port), '127.0.0.1', () => {
  console.log(`peer: node-oidc-provider listening on ${ISSUER} (node ${process.version}, pid ${process.pid})`);
});
for (const sig of ['SIGTERM', 'SIGINT']) {
  process.on(sig, () => {
    server.close();
    process.exit(0);
  });
}
