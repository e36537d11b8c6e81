// bench/compare.py peer: express + express-openid-connect + http-proxy-middleware, with the
// session in Redis (connect-redis). Configured by environment variables, printed "READY" on
// stdout once listening; stopped by SIGTERM (by PID, from the bench).
//
//   PORT, UPSTREAM (http://127.0.0.1:U), ISSUER, CLIENT_ID, CLIENT_SECRET, REDIS_URL
//
// GET /login starts a login (PKCE S256, code flow), the IdP comes back to /callback;
// /api/* needs a session (401 otherwise) and is proxied to UPSTREAM with the session's
// access token as "Authorization: Bearer", over keep-alive connections.
'use strict';

const http = require('node:http');
const express = require('express');
const { auth, requiresAuth } = require('express-openid-connect');
const { createProxyMiddleware } = require('http-proxy-middleware');
const RedisStore = require('connect-redis').default;
const { createClient } = require('redis');

const env = (name) => {
  const v = process.env[name];
  if (!v) {
    process.stderr.write(`express peer: ${name} is not set\n`);
    process.exit(2);
  }
  return v;
};
const port = Number(env('PORT'));

async function main() {
  const redis = createClient({ url: env('REDIS_URL') });
  redis.on('error', (err) => process.stderr.write(`redis: ${err}\n`));
  await redis.connect();
  const redisStore = new RedisStore({ client: redis, prefix: 'eoc:' });
  // express-openid-connect 3.4 guesses callback- vs promise-style from the store's function
  // signatures and guesses wrong for connect-redis 7 (every session then reads as missing):
  // hand it plain callback methods.
  const store = {
    get: (id, cb) => redisStore.get(id, cb),
    set: (id, sess, cb) => redisStore.set(id, sess, cb),
    destroy: (id, cb) => redisStore.destroy(id, cb),
  };

  const app = express();
  app.disable('x-powered-by');
  app.set('etag', false);
  app.use(auth({
    issuerBaseURL: env('ISSUER'),
    baseURL: `http://127.0.0.1:${port}`,
    clientID: env('CLIENT_ID'),
    clientSecret: env('CLIENT_SECRET'),
    secret: 'bench-express-session-secret-0123456789abcdef',
    authRequired: false,
    errorOnRequiredAuth: true, // 401 for API calls without a session, not a redirect
    idpLogout: false,
    authorizationParams: { response_type: 'code', scope: 'openid' }, // code + PKCE S256
    routes: { login: '/login', callback: '/callback', logout: '/logout' },
    session: { store, rolling: true, rollingDuration: 86400, absoluteDuration: 604800 },
  }));

  const agent = new http.Agent({ keepAlive: true, maxSockets: 256 });
  app.use('/api', requiresAuth(), createProxyMiddleware({
    target: `${env('UPSTREAM')}/api`,
    changeOrigin: true,
    agent,
    on: {
      proxyReq: (proxyReq, req) => {
        proxyReq.setHeader('Authorization', `Bearer ${req.oidc.accessToken.access_token}`);
        proxyReq.removeHeader('cookie');
      },
    },
  }));
  app.get('/', (req, res) => res.json({ authenticated: req.oidc.isAuthenticated() }));

  const server = app.listen(port, '127.0.0.1', () => process.stdout.write('READY\n'));
  server.keepAliveTimeout = 65000;
  process.on('SIGTERM', () => {
    server.close();
    redis.quit().finally(() => process.exit(0));
    setTimeout(() => process.exit(0), 2000).unref();
  });
}

main().catch((err) => {
  process.stderr.write(`express peer: ${err.stack || err}\n`);
  process.exit(1);
});
