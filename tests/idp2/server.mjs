// A second, different OpenID provider for the bffgate e2e suite: the npm package
// `oauth2-mock-server` 8.x (AXA), NOT oidc-provider. tests/e2e/test_second_idp.py runs the
// gateway's core flow against it to show that nothing in the gateway is tuned to one IdP.
//
// Environment:
//   IDP2_PORT                  (required) port on 127.0.0.1
//   IDP2_ACCESS_TOKEN_TTL      access-token lifetime in seconds (default: the mock's 3600)
//   IDP2_EXIT_ON_STDIN_EOF=1   exit when stdin closes (the test process died)
// Issuer: http://127.0.0.1:<port>. Prints exactly one line "READY <issuer>" on stdout once
// listening; diagnostics go to stderr.
//
// What the mock does on its own (read from node_modules/oauth2-mock-server, v8.2.3):
// - discovery advertises code_challenge_methods_supported ["plain", "S256"], no
//   authorization_response_iss_parameter_supported (and /authorize sends no `iss`),
//   token_endpoint_auth_methods_supported ["none"] (it authenticates no client at all: any
//   client id/secret, Basic or POST, is accepted; the ID token's aud is the Basic user name or
//   the posted client_id), grant_types_supported without refresh_token (yet it serves it);
// - /authorize has no login page: it 302s straight back to redirect_uri with code + state
//   (any redirect_uri, any client); codes are not single-use;
// - /token checks PKCE when a code_verifier is sent (S256 or plain, as requested at
//   /authorize), copies the /authorize nonce into the ID token, sub is always "johndoe";
//   every non-client-credentials grant returns a new random refresh_token, and the refresh
//   grant accepts ANY refresh token (no invalid_grant, ever);
// - /revoke always answers 200 and forgets nothing; /endsession redirects to
//   post_logout_redirect_uri; no back-channel logout, no sid claim.
//
// Tweaks made here, each the smallest that makes the mock usable by the gateway's tests:
// 1. The issuer is http://127.0.0.1:<port> (the mock would name itself http://localhost:<port>
//    when bound to 127.0.0.1); keeps the IdP on a different site from the gateway (localhost).
// 2. IDP2_ACCESS_TOKEN_TTL: the mock hard-codes 3600 s; short lifetimes let a test see a
//    refresh. Set consistently in the JWT `exp` and in `expires_in` (RFC 6749 5.1).
// 3. Access tokens get a `jti` (RFC 9068 2.2 requires one in JWT access tokens): the mock's are
//    otherwise byte-identical when issued in the same second (same claims, deterministic
//    RS256), so a test could not tell which grant a token the upstream received came from.
// 4. Test-only endpoints served in front of the mock (nothing of the mock's own behaviour
//    changes): GET /test/stats (what the gateway sent), POST /test/reset,
//    POST /test/fail-next-refresh (the next refresh grant answers 400 invalid_grant, as a
//    real IdP does for an expired/revoked refresh token, RFC 6749 5.2; the mock itself never
//    refuses one). For this the same two classes OAuth2Server composes (OAuth2Issuer +
//    OAuth2Service) run behind a plain node:http server instead of OAuth2Server's own.
//    POST /test/tamper-next-refresh?id_token=signature|aud|iss|sub spoils the ID token of the
//    next refresh grant that way (a broken signature, another audience, issuer or subject),
//    for the gateway's OIDC Core 12.2 tests.
// Nothing else needed restoring: S256 is advertised, the nonce is echoed, sub is stable.
//
// Never use this outside tests: it authenticates nobody.

import { randomUUID } from 'node:crypto';
import { createServer } from 'node:http';

import { OAuth2Issuer, OAuth2Service } from 'oauth2-mock-server';

// Keep stdout for the READY line only.
console.log = (...args) => console.error(...args);
console.info = (...args) => console.error(...args);

function fail(message) {
  process.stderr.write(`test-idp2: ${message}\n`);
  process.exit(2);
}

const port = Number(process.env.IDP2_PORT);
if (!Number.isInteger(port) || port <= 0 || port > 65535) {
  fail('IDP2_PORT must be an integer between 1 and 65535');
}
const accessTtlRaw = process.env.IDP2_ACCESS_TOKEN_TTL;
const accessTtl = accessTtlRaw === undefined ? undefined : Number(accessTtlRaw);
if (accessTtl !== undefined && (!Number.isInteger(accessTtl) || accessTtl <= 0)) {
  fail('IDP2_ACCESS_TOKEN_TTL must be a positive integer (seconds)');
}

const host = '127.0.0.1';
const issuerUrl = `http://${host}:${port}`;

const issuer = new OAuth2Issuer();
issuer.url = issuerUrl; // tweak 1
await issuer.keys.generate('RS256');
const service = new OAuth2Service(issuer);

// ------------------------------------------------------------------ observation (tweak 4)
const stats = { token_requests: [], revocations: [], end_sessions: [] };
let failNextRefresh = false;
let tamperNextRefresh = null; // null | 'signature' | 'aud' | 'iss' | 'sub'
const TAMPER_CLAIMS = { aud: 'another-client', iss: `${issuerUrl}/another-issuer`, sub: 'mallory' };

function clientAuth(req, form) {
  const header = req.headers.authorization ?? '';
  if (/^basic /i.test(header)) return 'basic';
  if (form && typeof form.client_secret === 'string') return 'post';
  return 'none';
}

// beforeTokenSigning fires for every JWT the token endpoint builds: the access token
// (its payload carries `scope`) and the ID token (no `scope`).
service.on('beforeTokenSigning', (token, req) => {
  if (accessTtl !== undefined && 'scope' in token.payload) {
    token.payload.exp = token.payload.iat + accessTtl; // tweak 2
  }
  if ('scope' in token.payload) {
    token.payload.jti = randomUUID(); // tweak 3
  }
  const claim = tamperNextRefresh;
  if (claim in TAMPER_CLAIMS && req?.body?.grant_type === 'refresh_token' && !('scope' in token.payload)) {
    token.payload[claim] = TAMPER_CLAIMS[claim]; // tweak 4: the ID token, before signing
  }
});

service.on('beforeResponse', (response, req) => {
  const form = req.body ?? {};
  if (accessTtl !== undefined && response.statusCode === 200 && response.body.access_token) {
    response.body.expires_in = accessTtl; // tweak 2: same lifetime as the JWT exp
  }
  if (form.grant_type === 'refresh_token' && failNextRefresh) {
    failNextRefresh = false; // tweak 4
    response.statusCode = 400;
    response.body = { error: 'invalid_grant', error_description: 'refresh token revoked (test)' };
  }
  if (form.grant_type === 'refresh_token' && tamperNextRefresh && response.body.id_token) {
    if (tamperNextRefresh === 'signature') { // tweak 4: flip the signature's first character
      const [h, p, sig] = response.body.id_token.split('.');
      response.body.id_token = `${h}.${p}.${sig[0] === 'A' ? 'B' : 'A'}${sig.slice(1)}`;
    }
    tamperNextRefresh = null;
  }
  stats.token_requests.push({
    grant_type: form.grant_type ?? null,
    client_auth: clientAuth(req, form),
    client_id: form.client_id ?? null,
    code_verifier: typeof form.code_verifier === 'string',
    redirect_uri: form.redirect_uri ?? null,
    refresh_token_presented: form.refresh_token ?? null,
    status: response.statusCode,
    access_token_issued: response.body.access_token ?? null,
    refresh_token_issued: response.body.refresh_token ?? null,
    id_token_issued: response.body.id_token ?? null,
    ts: Date.now() / 1000,
  });
});

service.on('beforePostLogoutRedirect', (_redirect, req) => {
  stats.end_sessions.push({
    id_token_hint: req.query.id_token_hint ?? null,
    post_logout_redirect_uri: req.query.post_logout_redirect_uri ?? null,
    client_id: req.query.client_id ?? null,
  });
});

// ------------------------------------------------------------------ HTTP
function sendJson(res, status, body) {
  const payload = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store' });
  res.end(payload);
}

function readBody(req) {
  return new Promise((resolve, reject) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

const mock = service.requestHandler;

const server = createServer((req, res) => {
  const path = new URL(req.url ?? '/', issuerUrl).pathname;
  if (path === '/test/stats' && req.method === 'GET') {
    sendJson(res, 200, stats);
    return;
  }
  if (path === '/test/reset' && req.method === 'POST') {
    stats.token_requests.length = 0;
    stats.revocations.length = 0;
    stats.end_sessions.length = 0;
    failNextRefresh = false;
    tamperNextRefresh = null;
    sendJson(res, 200, { ok: true });
    return;
  }
  if (path === '/test/tamper-next-refresh' && req.method === 'POST') {
    const what = new URL(req.url ?? '/', issuerUrl).searchParams.get('id_token');
    if (what !== 'signature' && !(what in TAMPER_CLAIMS)) {
      sendJson(res, 400, { error: 'id_token must be signature, aud, iss or sub' });
      return;
    }
    tamperNextRefresh = what;
    sendJson(res, 200, { ok: true });
    return;
  }
  if (path === '/test/fail-next-refresh' && req.method === 'POST') {
    failNextRefresh = true;
    sendJson(res, 200, { ok: true });
    return;
  }
  if (path === '/revoke' && req.method === 'POST') {
    // The mock's /revoke parses no form body (its handler ignores the token), so read it
    // here to record what was revoked, then hand over: body-parser skips a finished stream.
    readBody(req).then((raw) => {
      const form = Object.fromEntries(new URLSearchParams(raw));
      stats.revocations.push({
        token: form.token ?? null,
        token_type_hint: form.token_type_hint ?? null,
        client_auth: clientAuth(req, form),
      });
      mock(req, res);
    }, (err) => {
      console.error('test-idp2: reading /revoke body failed', err);
      sendJson(res, 400, { error: 'invalid_request' });
    });
    return;
  }
  mock(req, res);
});

server.on('error', (err) => {
  // EADDRINUSE and friends: say so on stderr and exit, the fixture reports it.
  fail(`listen on ${host}:${port} failed: ${err.code ?? err.message}`);
});

server.listen(port, host, () => {
  process.stdout.write(`READY ${issuerUrl}\n`);
});

function shutdown(signal) {
  console.error(`test-idp2: ${signal}, exiting`);
  server.close(() => process.exit(0));
  server.closeAllConnections?.();
  setTimeout(() => process.exit(0), 1000).unref();
}

process.on('SIGTERM', () => shutdown('SIGTERM'));
process.on('SIGINT', () => shutdown('SIGINT'));

if (process.env.IDP2_EXIT_ON_STDIN_EOF === '1') {
  process.stdin.on('end', () => shutdown('stdin closed (parent gone)'));
  process.stdin.resume();
}
