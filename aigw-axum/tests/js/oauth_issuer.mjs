// An OAuth 2.0 authorization server on oauth2-mock-server for the MCP gateway's OAuth
// tests: OpenID discovery metadata, a JWKS, and RS256 access tokens from the
// client-credentials grant. The form fields `audience`, `sub`, `team` and `expired=1`
// shape the token's `aud`, `sub`, `team` and `exp`; `scope` is copied as the server does.
//
// Usage: node oauth_issuer.mjs PORT
// Prints "READY <issuer URL>" once listening; exits when stdin closes.
import { pathToFileURL } from 'node:url';
import path from 'node:path';

const [port] = process.argv.slice(2);
const lib = path.join(process.env.AIGW_NPM_DIR, 'node_modules/oauth2-mock-server/dist/index.mjs');
const { OAuth2Server } = await import(pathToFileURL(lib).href);

const server = new OAuth2Server();
await server.issuer.keys.generate('RS256');
server.service.on('beforeTokenSigning', (token, req) => {
  const b = req.body || {};
  token.payload.aud = b.audience || 'mcp-gateway';
  token.payload.sub = b.sub || 'alice';
  if (b.team) {
    token.payload.team = b.team;
  }
  if (b.expired === '1') {
    token.payload.exp = Math.floor(Date.now() / 1000) - 120;
  }
});
await server.start(Number(port), '127.0.0.1');
process.stdout.write(`READY ${server.issuer.url}\n`);
process.stdin.resume();
process.stdin.on('end', async () => {
  await server.stop();
  process.exit(0);
});
