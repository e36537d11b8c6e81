// Test-only OpenID Provider for the bffgate test suite (oidc-provider v9).
//
// Configured by ONE JSON document in the IDP_CONFIG environment variable:
//   {
//     "port": 9400,                       (required)
//     "clients": [ {client metadata}, ...],
//     "access_token_ttl": 300, "id_token_ttl": 300, "refresh_token_ttl": 86400,
//     "rotate_refresh_tokens": true,      (rotate the refresh token on every use)
//     "auto_consent": true,               (grant the requested scopes without a consent page)
//     "state_file": "/tmp/x.json"         (optional: keep keys, grants and tokens across
//                                          restarts, so "IdP down, then back" can be tested)
//     "dpop": false                       (turn DPoP off: no dpop_signing_alg_values_supported)
//     "dpop_require_nonce": true          (DPoP proofs must carry a server nonce; a client
//                                          registered with dpop_bound_access_tokens: true is
//                                          refused any token without a proof)
//     "client_credentials": {...}         (see "Client credentials" below)
//   }
// Issuer: http://127.0.0.1:<port>. Prints exactly one line "READY <issuer>" on stdout once
// listening; everything else (oidc-provider notices included) goes to stderr.
//
// Test-only endpoints (served before the provider's own routes):
//   GET  /test/stats        {"token_requests": [{grant_type, client_auth: basic|post|
//                           private_key_jwt|none, client_id, assertion: {alg, kid}|null, status,
//                           ts}], "refresh_grants": n, "refresh_success": n, "revocations":
//                           [{token_sha256, token_type_hint, client_id, client_auth, assertion,
//                           status, ts}], "token_exchanges": [{subject_sha256, targets, scope,
//                           error, ts}] (RFC 8693 grants, see "Token exchange" below)}
//   POST /test/reset        clear the stats
//   POST /test/backchannel  {"sub": ..., "sid"?: ..., "client_id"?: ...} -> send back-channel
//                           logout tokens to the clients that registered a backchannel_logout_uri
//
// Behaviour worth knowing: PKCE (S256) is required for every client; offline_access in the
// scope yields a refresh token even without prompt=consent; scope claims (name, email) are in
// the ID token too; back-channel logout may target loopback only (never off this machine).
// IDP_EXIT_ON_STDIN_EOF=1 makes the process exit when its stdin closes (parent died).
//
// Never use this outside tests: any login/password is accepted.

import { createHash, generateKeyPairSync, randomBytes } from 'node:crypto';
import { existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { isIP } from 'node:net';

import Provider from 'oidc-provider';
import { errors as oidcErrors } from 'oidc-provider'; // token exchange (RFC 8693)

// oidc-provider writes its NOTICE lines with console.info (stdout); keep stdout for READY only.
console.info = (...args) => console.error(...args);
console.log = (...args) => console.error(...args);

function fail(message) {
  process.stderr.write(`test-idp: ${message}\n`);
  process.exit(2);
}

let config;
try {
  config = JSON.parse(process.env.IDP_CONFIG ?? '');
} catch (err) {
  fail(`IDP_CONFIG must be a JSON document: ${err.message}`);
}
if (config === null || typeof config !== 'object' || Array.isArray(config)) {
  fail('IDP_CONFIG must be a JSON object');
}

const port = Number(config.port);
if (!Number.isInteger(port) || port <= 0 || port > 65535) {
  fail('IDP_CONFIG.port must be an integer between 1 and 65535');
}

function seconds(name, fallback) {
  const value = config[name] ?? fallback;
  if (!Number.isInteger(value) || value <= 0) {
    fail(`IDP_CONFIG.${name} must be a positive integer (seconds)`);
  }
  return value;
}

const accessTokenTtl = seconds('access_token_ttl', 300);
const idTokenTtl = seconds('id_token_ttl', 300);
const refreshTokenTtl = seconds('refresh_token_ttl', 86400);
const rotateRefreshTokens = config.rotate_refresh_tokens ?? true;
const autoConsent = config.auto_consent ?? true;
const clients = config.clients ?? [];
if (!Array.isArray(clients)) {
  fail('IDP_CONFIG.clients must be an array');
}

const issuer = `http://127.0.0.1:${port}`;

// DPoP server nonces (owner: DPOP): a per-process secret, set only when nonces are required,
// so that without the switch no DPoP-Nonce header is ever sent.
const dpopEnabled = config.dpop !== false;
const dpopRequireNonce = config.dpop_require_nonce === true;
const dpopNonceSecret = dpopRequireNonce ? randomBytes(32) : undefined;

// ---------------------------------------------------------------------------------------------
// Keys: generated per process, so a restart invalidates every token (by design).

// With state_file, keys and every stored artefact survive a restart instead.

const stateFile = typeof config.state_file === 'string' ? config.state_file : null;
const persisted = stateFile && existsSync(stateFile) ? JSON.parse(readFileSync(stateFile, 'utf8')) : null;

function newSigningKey() {
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  return { ...privateKey.export({ format: 'jwk' }), use: 'sig', alg: 'RS256', kid: `test-${randomBytes(6).toString('hex')}` };
}
const signingKey = persisted?.signingKey ?? newSigningKey();
const cookieKey = persisted?.cookieKey ?? randomBytes(32).toString('base64url');

// In-memory adapter (the default's behaviour) that mirrors itself to state_file when set.
const storage = new Map(Object.entries(persisted?.storage ?? {}));

function saveState() {
  if (!stateFile) return;
  const tmp = `${stateFile}.tmp`;
  writeFileSync(tmp, JSON.stringify({ signingKey, cookieKey, storage: Object.fromEntries(storage) }));
  renameSync(tmp, stateFile);
}

class TestAdapter {
  constructor(name) { this.name = name; }

  key(id) { return `${this.name}:${id}`; }

  static live(entry) { return entry && (!entry.exp || entry.exp > Date.now()) ? entry : undefined; }

  async upsert(id, payload, expiresIn) {
    storage.set(this.key(id), { payload, exp: expiresIn ? Date.now() + expiresIn * 1000 : 0 });
    if (payload.grantId) {
      const gk = `grant:${payload.grantId}`;
      const list = storage.get(gk)?.payload ?? [];
      list.push(this.key(id));
      storage.set(gk, { payload: list, exp: 0 });
    }
    if (payload.userCode) storage.set(`userCode:${payload.userCode}`, { payload: id, exp: 0 });
    if (payload.uid) storage.set(`uid:${payload.uid}`, { payload: id, exp: 0 });
    saveState();
  }

  async find(id) { return TestAdapter.live(storage.get(this.key(id)))?.payload; }

  async findByUserCode(code) {
    const id = storage.get(`userCode:${code}`)?.payload;
    return id ? this.find(id) : undefined;
  }

  async findByUid(uid) {
    const id = storage.get(`uid:${uid}`)?.payload;
    return id ? this.find(id) : undefined;
  }

  async consume(id) {
    const entry = storage.get(this.key(id));
    if (entry) entry.payload.consumed = Math.floor(Date.now() / 1000);
    saveState();
  }

  async destroy(id) { storage.delete(this.key(id)); saveState(); }

  async revokeByGrantId(grantId) {
    const gk = `grant:${grantId}`;
    for (const k of storage.get(gk)?.payload ?? []) storage.delete(k);
    storage.delete(gk);
    saveState();
  }
}

// ---------------------------------------------------------------------------------------------
// Accounts: any login is an account whose sub is the login name.

async function findAccount(_ctx, sub) {
  return {
    accountId: sub,
    async claims() {
      return { sub, name: `${sub} Example`, email: `${sub}@example.test` };
    },
  };
}

// offline_access without prompt=consent.
//
// oidc-provider drops offline_access from every authorization request that lacks
// prompt=consent (OpenID Connect Core 11), before interactions start. This test OP puts it back
// whenever the raw request asked for it and the client may use the refresh_token grant, so a
// plain "scope=openid ... offline_access" login yields a refresh token (as with most IdPs).
// The raw scope is read from the request itself (/auth) or, on resume after the login page,
// remembered by interaction uid (the stored interaction params are already stripped).

const OFFLINE = 'offline_access';
const offlineInteractions = new Set();

function rawScopeHasOffline(ctx) {
  const raw = ctx.method === 'POST' ? ctx.oidc?.body?.scope : ctx.query.scope;
  return typeof raw === 'string' && raw.split(' ').includes(OFFLINE);
}

function restoreOfflineAccess(ctx) {
  const { oidc } = ctx;
  if (!oidc.client.grantTypeAllowed('refresh_token')) return;
  if (!String(oidc.params.response_type ?? '').split(' ').includes('code')) return;
  let wanted = false;
  if (oidc.route === 'authorization') {
    wanted = rawScopeHasOffline(ctx);
  } else if (oidc.route === 'resume') {
    const uid = oidc.entities.Interaction?.uid;
    wanted = uid !== undefined && offlineInteractions.has(uid);
  }
  const scopes = String(oidc.params.scope ?? '').split(' ').filter(Boolean);
  if (wanted && !scopes.includes(OFFLINE)) {
    oidc.params.scope = [...scopes, OFFLINE].join(' ');
  }
}

// Runs around the provider's /auth route: remember the interactions started by a request
// that asked for offline_access.
async function rememberOfflineInteractions(ctx, next) {
  await next();
  if (ctx.path !== '/auth' || !ctx.oidc || !rawScopeHasOffline(ctx)) return;
  const location = ctx.response.get('location');
  const match = /^(?:https?:\/\/[^/]+)?\/interaction\/([^/?#]+)/.exec(location);
  if (match) {
    offlineInteractions.add(match[1]);
    if (offlineInteractions.size > 10000) {
      offlineInteractions.delete(offlineInteractions.values().next().value);
    }
  }
}

// Called (with a logged-in account) on /auth and on resume after the interactions.
// With auto_consent (default) the requested OIDC scopes and claims are granted without the
// consent page (first-party style); otherwise the devInteractions consent page asks.
async function loadExistingGrant(ctx) {
  const { oidc } = ctx;
  restoreOfflineAccess(ctx);
  const grantId = oidc.result?.consent?.grantId || oidc.session.grantIdFor(oidc.client.clientId);
  let grant;
  if (grantId) {
    grant = await oidc.provider.Grant.find(grantId);
  }
  if (!autoConsent) {
    return grant;
  }
  if (!grant) {
    grant = new oidc.provider.Grant({ accountId: oidc.session.accountId, clientId: oidc.client.clientId });
  }
  const scopes = [...oidc.requestParamOIDCScopes];
  if (scopes.length) {
    grant.addOIDCScope(scopes.join(' '));
  }
  const claims = [...oidc.requestParamClaims];
  if (claims.length) {
    grant.addOIDCClaims(claims);
  }
  await grant.save();
  return grant;
}

// ---------------------------------------------------------------------------------------------
// Outgoing requests (back-channel logout): loopback targets only, no SSRF filter for them.

function isLoopbackHost(hostname) {
  const host = hostname.replace(/^\[|\]$/g, '');
  if (host === 'localhost') return true;
  if (isIP(host) === 4) return host.startsWith('127.');
  if (isIP(host) === 6) return host === '::1';
  return false;
}

async function loopbackOnlyFetch(url, options) {
  const target = new URL(url);
  if (!isLoopbackHost(target.hostname)) {
    throw new Error(`test-idp refuses to send a request off this machine: ${target.origin}`);
  }
  // oidc-provider installs a dispatcher that drops connections to special-use addresses
  // (loopback included); loopback is exactly where the test gateway lives.
  const { dispatcher, ...rest } = options;
  return globalThis.fetch(url, rest);
}

// ---------------------------------------------------------------------------------------------
// Token exchange (RFC 8693): grant_type urn:ietf:params:oauth:grant-type:token-exchange.
//
// IDP_CONFIG.token_exchange (optional): {"audiences": {"<audience or resource>": ["scope", ...]},
// "ttl": <seconds, default access_token_ttl>}. Only the listed audiences may be asked for
// (by `audience` or `resource`); a requested scope must be among that audience's scopes.
// A client needs the grant in its grant_types. The subject token must be an active access
// token of the same client (opaque, from this OP); the issued one is an opaque access token
// for the subject's account, in the subject's grant (revoking the grant revokes it too), whose
// introspection shows `aud` = the requested target. Errors: an unknown audience or none ->
// invalid_target; an inactive, unknown or foreign subject token -> invalid_grant; a wrong or
// missing token type -> invalid_request; a scope outside the audience's -> invalid_scope.

const TOKEN_EXCHANGE = 'urn:ietf:params:oauth:grant-type:token-exchange';
const ACCESS_TOKEN_TYPE = 'urn:ietf:params:oauth:token-type:access_token';
// IDP_CONFIG.token_exchange = false: no such grant at all (not in grant_types_supported).
const exchangeEnabled = config.token_exchange !== false;
const exchangeConfig = exchangeEnabled ? (config.token_exchange ?? {}) : {};
if (exchangeConfig === null || typeof exchangeConfig !== 'object' || Array.isArray(exchangeConfig)) {
  fail('IDP_CONFIG.token_exchange must be an object or false');
}
const exchangeAudiences = new Map(Object.entries(exchangeConfig.audiences ?? {}));
for (const [audience, scopes] of exchangeAudiences) {
  if (!Array.isArray(scopes) || !scopes.every((s) => typeof s === 'string')) {
    fail(`IDP_CONFIG.token_exchange.audiences[${JSON.stringify(audience)}] must be a list of scopes`);
  }
}
const exchangeTtl = exchangeConfig.ttl;
if (exchangeTtl !== undefined && (!Number.isInteger(exchangeTtl) || exchangeTtl <= 0)) {
  fail('IDP_CONFIG.token_exchange.ttl must be a positive integer (seconds)');
}

// What each exchange was asked and answered, for /test/stats `token_exchanges`:
// {subject_sha256 (never the token), targets, scope, error (null when issued), ts}.
async function tokenExchangeGrant(ctx) {
  const { params } = ctx.oidc;
  const record = {
    subject_sha256: typeof params.subject_token === 'string'
      ? createHash('sha256').update(params.subject_token).digest('hex') : null,
    targets: [params.audience, params.resource].filter((t) => typeof t === 'string'),
    scope: typeof params.scope === 'string' ? params.scope : null,
    error: null,
    ts: Date.now(),
  };
  try {
    await exchangeSubjectToken(ctx);
  } catch (err) {
    record.error = err?.error ?? 'server_error';
    throw err;
  } finally {
    stats.token_exchanges.push(record);
  }
}

async function exchangeSubjectToken(ctx) {
  const { params, client, provider: op } = ctx.oidc;
  const { InvalidGrant, InvalidRequest, InvalidScope, InvalidTarget } = oidcErrors;
  if (typeof params.subject_token !== 'string' || !params.subject_token) {
    throw new InvalidRequest('missing subject_token');
  }
  if (params.subject_token_type !== ACCESS_TOKEN_TYPE) {
    throw new InvalidRequest(`subject_token_type must be ${ACCESS_TOKEN_TYPE}`);
  }
  if (params.requested_token_type !== undefined && params.requested_token_type !== ACCESS_TOKEN_TYPE) {
    throw new InvalidRequest(`requested_token_type must be ${ACCESS_TOKEN_TYPE}`);
  }
  if (params.actor_token !== undefined) {
    throw new InvalidRequest('actor tokens (delegation) are not supported');
  }
  const targets = [...new Set([params.audience, params.resource].filter((t) => typeof t === 'string' && t))];
  if (!targets.length) {
    throw new InvalidTarget('audience or resource is required');
  }
  const unknown = targets.filter((t) => !exchangeAudiences.has(t));
  if (unknown.length) {
    throw new InvalidTarget(`unknown audience: ${unknown.join(' ')}`);
  }
  // The subject first by existence and life, then its grant (as introspection checks it).
  const subject = await op.AccessToken.find(params.subject_token);
  if (!subject?.isValid || subject.clientId !== client.clientId || !subject.accountId) {
    throw new InvalidGrant('subject token is not active');
  }
  if (subject.grantId) {
    const grant = await op.Grant.find(subject.grantId);
    if (!grant || grant.isExpired || grant.accountId !== subject.accountId) {
      throw new InvalidGrant('subject token is not active');
    }
  }
  const allowed = new Set(targets.flatMap((t) => exchangeAudiences.get(t)));
  const requested = String(params.scope ?? '').split(' ').filter(Boolean);
  const outside = requested.filter((s) => !allowed.has(s));
  if (outside.length) {
    throw new InvalidScope('requested scope is not allowed for this audience', outside.join(' '));
  }
  const at = new op.AccessToken({
    accountId: subject.accountId,
    client,
    grantId: subject.grantId,
    gty: 'token_exchange',
    scope: requested.join(' ') || undefined,
    sid: subject.sid,
    ...(exchangeTtl ? { expiresIn: exchangeTtl } : {}),
  });
  at.aud = targets.length === 1 ? targets[0] : targets;
  ctx.oidc.entity('AccessToken', at);
  const value = await at.save();
  ctx.body = {
    access_token: value,
    issued_token_type: ACCESS_TOKEN_TYPE,
    token_type: at.tokenType,
    expires_in: at.expiration,
    ...(at.scope ? { scope: at.scope } : {}),
  };
}

function registerTokenExchange(op) {
  if (!exchangeEnabled) return;
  op.registerGrantType(TOKEN_EXCHANGE, tokenExchangeGrant, [
    'subject_token', 'subject_token_type', 'requested_token_type', 'audience', 'resource',
    'scope', 'actor_token', 'actor_token_type',
  ]);
}

// ---------------------------------------------------------------------------------------------
// Client credentials (RFC 6749 4.4; owner: CLIENT) with resource indicators (RFC 8707).
//
// IDP_CONFIG.client_credentials (optional): {"enabled": true (default; false: the grant is
// neither served nor listed in grant_types_supported), "scopes": ["reports:read", ...] (extra
// scopes a client may ask for without a resource), "resources": {"<absolute URI>": {"scope":
// "orders:read orders:write", "ttl": <seconds>}}, "ttl": <seconds, default access_token_ttl>}.
// A client needs "client_credentials" in its grant_types and the scopes in its `scope`. The
// token is opaque (introspection: active, client_id, scope, aud = the resource; no sub). An
// `audience` form parameter (as some IdPs take it) counts as the resource indicator; an unknown
// resource or audience is invalid_target.

const ccConfig = config.client_credentials ?? {};
if (ccConfig === null || typeof ccConfig !== 'object' || Array.isArray(ccConfig)) {
  fail('IDP_CONFIG.client_credentials must be an object');
}
const ccEnabled = ccConfig.enabled ?? true;
const ccScopes = ccConfig.scopes ?? [];
if (!Array.isArray(ccScopes) || !ccScopes.every((x) => typeof x === 'string')) {
  fail('IDP_CONFIG.client_credentials.scopes must be a list of scopes');
}
const ccResources = new Map(Object.entries(ccConfig.resources ?? {}));
for (const [uri, info] of ccResources) {
  if (!info || typeof info.scope !== 'string' || (info.ttl !== undefined && !Number.isInteger(info.ttl))) {
    fail(`IDP_CONFIG.client_credentials.resources[${JSON.stringify(uri)}] needs scope (string), ttl optional`);
  }
}
const ccTtl = ccConfig.ttl ?? accessTokenTtl;

async function ccDefaultResource(ctx, _client, oneOf) {
  if (oneOf) return oneOf;
  const body = ctx.oidc?.body ?? {};
  if (body.grant_type === 'client_credentials' && typeof body.audience === 'string' && body.audience) {
    return body.audience;
  }
  return undefined;
}

async function ccResourceServerInfo(_ctx, resource, _client) {
  const info = ccResources.get(resource);
  if (!info) throw new oidcErrors.InvalidTarget(`unknown resource: ${resource}`);
  return {
    scope: info.scope, audience: resource, accessTokenFormat: 'opaque', accessTokenTTL: info.ttl ?? ccTtl,
  };
}

// ---------------------------------------------------------------------------------------------

const provider = new Provider(issuer, {
  clients,
  findAccount,
  loadExistingGrant,
  jwks: { keys: [signingKey] },
  cookies: { keys: [cookieKey] },
  adapter: TestAdapter,
  claims: {
    openid: ['sub'],
    profile: ['name'],
    email: ['email'],
  },
  scopes: ['openid', 'offline_access', 'profile', 'email', ...ccScopes],
  responseTypes: ['code'],
  // Put scope-derived claims (name, email) in the ID token too, as most IdPs do.
  conformIdTokenClaims: false,
  pkce: { required: () => true },
  clientBasedCORS: () => false,
  issueRefreshToken: async (_ctx, client, code) => (
    client.grantTypeAllowed('refresh_token') && code.scopes.has('offline_access')
  ),
  rotateRefreshToken: () => rotateRefreshTokens === true,
  ttl: {
    AccessToken: accessTokenTtl,
    IdToken: idTokenTtl,
    RefreshToken: refreshTokenTtl,
    ClientCredentials: (_ctx, token) => token.resourceServer?.accessTokenTTL ?? ccTtl,
    AuthorizationCode: 60,
    Interaction: 600,
    Session: Math.max(refreshTokenTtl, 86400),
    Grant: Math.max(refreshTokenTtl, 86400),
  },
  features: {
    devInteractions: { enabled: true },
    introspection: {
      enabled: true,
      allowedPolicy: async (_ctx, client, token) => (
        client.clientAuthMethod !== 'none' || token.clientId === client.clientId
      ),
    },
    revocation: { enabled: true },
    // Client credentials and resource indicators (owner: CLIENT; see the block above).
    clientCredentials: { enabled: ccEnabled === true },
    resourceIndicators: {
      enabled: true,
      defaultResource: ccDefaultResource,
      getResourceServerInfo: ccResourceServerInfo,
    },
    rpInitiatedLogout: { enabled: true },
    backchannelLogout: { enabled: true },
    // DPoP (RFC 9449; owner: DPOP). On by default in v9; with "dpop_require_nonce": true in
    // IDP_CONFIG every proof must carry a server nonce (use_dpop_nonce + DPoP-Nonce first).
    dPoP: {
      enabled: dpopEnabled,
      nonceSecret: dpopNonceSecret,
      requireNonce: () => dpopRequireNonce,
    },
  },
  fetch: loopbackOnlyFetch,
});
registerTokenExchange(provider); // token exchange (RFC 8693), before the clients load

// ---------------------------------------------------------------------------------------------
// Test-only observability.

const stats = { token_requests: [], refresh_grants: 0, refresh_success: 0, revocations: [], token_exchanges: [] };

function resetStats() {
  stats.token_requests = [];
  stats.refresh_grants = 0;
  stats.refresh_success = 0;
  stats.revocations = [];
  stats.token_exchanges = [];
}

function clientAuthOf(ctx, body) {
  const authorization = ctx.get('authorization');
  if (/^basic\s/i.test(authorization)) return 'basic';
  if (body && typeof body.client_secret === 'string') return 'post';
  if (body && typeof body.client_assertion === 'string') return 'private_key_jwt';
  return 'none';
}

// The JOSE header of a client assertion ({alg, kid}; never the signed part), or null.
function assertionHeader(body) {
  if (!body || typeof body.client_assertion !== 'string') return null;
  try {
    const header = JSON.parse(Buffer.from(body.client_assertion.split('.')[0], 'base64url').toString('utf8'));
    return { alg: header.alg ?? null, kid: header.kid ?? null };
  } catch {
    return { alg: null, kid: null };
  }
}

async function readJson(ctx) {
  const chunks = [];
  for await (const chunk of ctx.req) chunks.push(chunk);
  const text = Buffer.concat(chunks).toString('utf8');
  return text ? JSON.parse(text) : {};
}

async function testRoutes(ctx, next) {
  if (ctx.path === '/test/stats' && ctx.method === 'GET') {
    ctx.set('cache-control', 'no-store');
    ctx.body = stats;
    return;
  }
  if (ctx.path === '/test/reset' && ctx.method === 'POST') {
    resetStats();
    ctx.status = 204;
    return;
  }
  if (ctx.path === '/test/backchannel' && ctx.method === 'POST') {
    let input;
    try {
      input = await readJson(ctx);
    } catch {
      ctx.status = 400;
      ctx.body = { error: 'invalid JSON body' };
      return;
    }
    if (!input || typeof input.sub !== 'string') {
      ctx.status = 400;
      ctx.body = { error: 'sub (string) is required' };
      return;
    }
    const ids = input.client_id ? [input.client_id] : clients.map((c) => c.client_id);
    const results = [];
    for (const id of ids) {
      // eslint-disable-next-line no-await-in-loop
      const client = await provider.Client.find(id);
      if (!client?.backchannelLogoutUri) continue;
      try {
        // eslint-disable-next-line no-await-in-loop
        await client.backchannelLogout(input.sub, input.sid);
        results.push({ client_id: id, ok: true });
      } catch (err) {
        console.error(`test-idp: back-channel logout to ${client.backchannelLogoutUri} failed:`, err);
        results.push({ client_id: id, ok: false, error: String(err?.cause?.message ?? err?.message ?? err) });
      }
    }
    ctx.body = { sent: results };
    return;
  }

  const isTokenRequest = ctx.path === '/token' && ctx.method === 'POST';
  const isRevocation = ctx.path === '/token/revocation' && ctx.method === 'POST';
  await next();

  if (isRevocation) {
    // What the OP was asked to revoke: a SHA-256 of the token (never the token itself), so a
    // test can match it against the token it knows.
    const body = ctx.oidc?.body ?? {};
    stats.revocations.push({
      token_sha256: typeof body.token === 'string' ? createHash('sha256').update(body.token).digest('hex') : null,
      token_type_hint: typeof body.token_type_hint === 'string' ? body.token_type_hint : null,
      client_id: ctx.oidc?.client?.clientId ?? null,
      client_auth: clientAuthOf(ctx, body),
      assertion: assertionHeader(body),
      status: ctx.status,
      ts: Date.now(),
    });
  }

  if (isTokenRequest) {
    // The provider parsed the form body by now.
    const body = ctx.oidc?.body ?? {};
    const grantType = typeof body.grant_type === 'string' ? body.grant_type : null;
    stats.token_requests.push({
      grant_type: grantType,
      client_auth: clientAuthOf(ctx, body),
      client_id: ctx.oidc?.client?.clientId ?? null,
      assertion: assertionHeader(body),
      status: ctx.status,
      ts: Date.now(),
    });
    if (grantType === 'refresh_token') {
      stats.refresh_grants += 1;
      if (ctx.status === 200) stats.refresh_success += 1;
    }
  }
}

// Strip external resources (web fonts) from the provider's HTML pages: no request may leave
// 127.0.0.1, including the browser's.
async function localOnlyHtml(ctx, next) {
  await next();
  if (typeof ctx.body === 'string' && ctx.response.is('html')) {
    ctx.body = ctx.body.replace(/@import\s+url\(\s*['"]?https?:\/\/[^)]*\)\s*;?/gi, '');
    if (!ctx.response.get('content-security-policy')) {
      ctx.set(
        'content-security-policy',
        "default-src 'self'; style-src 'self' 'unsafe-inline'; script-src 'self' 'unsafe-inline'; img-src 'self' data:",
      );
    }
  }
}

provider.use(testRoutes);
provider.use(localOnlyHtml);
provider.use(rememberOfflineInteractions);

// ---------------------------------------------------------------------------------------------
// Error logging (stderr).

provider.on('server_error', (ctx, err) => {
  console.error(`test-idp: server_error on ${ctx?.method} ${ctx?.path}:`, err);
});
for (const event of ['grant.error', 'authorization.error', 'introspection.error', 'revocation.error', 'end_session.error', 'userinfo.error']) {
  provider.on(event, (ctx, err) => {
    console.error(`test-idp: ${event} on ${ctx?.method} ${ctx?.path}: ${err?.name}: ${err?.message}${err?.error_description ? ` (${err.error_description})` : ''}`);
  });
}
provider.on('backchannel.error', (client, err, accountId, sid) => {
  console.error(`test-idp: backchannel.error for client ${client?.clientId} (sub=${accountId}, sid=${sid}):`, err);
});

// Static clients are validated lazily by oidc-provider: check them now, fail fast.
for (const metadata of clients) {
  try {
    // eslint-disable-next-line no-await-in-loop
    const client = await provider.Client.find(String(metadata?.client_id));
    if (!client) fail(`client ${JSON.stringify(metadata?.client_id)} could not be loaded`);
  } catch (err) {
    fail(`invalid client ${JSON.stringify(metadata?.client_id)}: ${err.message}${err.error_description ? ` (${err.error_description})` : ''}`);
  }
}

// With IDP_EXIT_ON_STDIN_EOF=1 the OP exits when its stdin closes, i.e. when the test
// process that spawned it (holding the pipe) dies without stopping it.
if (process.env.IDP_EXIT_ON_STDIN_EOF === '1') {
  process.stdin.on('end', () => {
    console.error('test-idp: stdin closed (parent gone), exiting');
    process.exit(0);
  });
  process.stdin.resume();
}

const server = provider.listen(port, '127.0.0.1', () => {
  process.stdout.write(`READY ${issuer}\n`);
});
server.on('error', (err) => {
  console.error(`test-idp: cannot listen on 127.0.0.1:${port}:`, err);
  process.exit(1);
});

function shutdown(signal) {
  console.error(`test-idp: ${signal}, shutting down`);
  server.close(() => process.exit(0));
  server.closeAllConnections?.();
  setTimeout(() => process.exit(0), 2000).unref();
}
process.on('SIGTERM', () => shutdown('SIGTERM'));
process.on('SIGINT', () => shutdown('SIGINT'));
