// A real OpenID Connect provider for the tests: node-oidc-provider (the certified one), on
// 127.0.0.1. Its development login page signs in whoever is typed; the accounts below are
// the people it knows. Usage: node provider.mjs PORT REDIRECT_URI CLIENT_SECRET
import { generateKeyPairSync } from 'node:crypto';
import http from 'node:http';
import Provider from 'oidc-provider';

const [port, redirect, secret] = process.argv.slice(2);
const issuer = `http://127.0.0.1:${port}`;
const accounts = {
  ada: { email: 'ada@hospital.example', email_verified: true, preferred_username: 'ada.lovelace', name: 'Ada Lovelace' },
  grace: { email: 'grace@hospital.example', email_verified: true, preferred_username: 'grace', name: 'Grace Hopper' },
  mallory: { email: 'dora@hospital.example', email_verified: false, preferred_username: 'dora', name: 'Not Dora' },
};
const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });

const provider = new Provider(issuer, {
  clients: [{
    client_id: 'giftcloud',
    client_secret: secret,
    redirect_uris: [redirect],
    grant_types: ['authorization_code'],
    response_types: ['code'],
    token_endpoint_auth_method: 'client_secret_post',
  }],
  pkce: { required: () => true, methods: ['S256'] },
  claims: { openid: ['sub'], email: ['email', 'email_verified'], profile: ['name', 'preferred_username'] },
  scopes: ['openid', 'email', 'profile'],
  jwks: { keys: [{ ...privateKey.export({ format: 'jwk' }), kid: 'test-idp', use: 'sig', alg: 'RS256' }] },
  cookies: { keys: ['giftcloud-test-cookie-key'] },
  features: { devInteractions: { enabled: true } },
  async findAccount(ctx, id) {
    return { accountId: id, async claims() { return { sub: `${id}-0001`, ...(accounts[id] || {}) }; } };
  },
  // no consent page: the test signs in, the provider grants what the client asks
  async loadExistingGrant(ctx) {
    const grant = new ctx.oidc.provider.Grant({ clientId: ctx.oidc.client.clientId, accountId: ctx.oidc.session.accountId });
    grant.addOIDCScope('openid email profile');
    await grant.save();
    return grant;
  },
});
provider.proxy = false;
http.createServer(provider.callback()).listen(Number(port), '127.0.0.1', () => {
  console.log(`oidc-provider listening on ${issuer}`);
});
