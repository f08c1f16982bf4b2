// An Entra ID shaped token endpoint on oauth2-mock-server: POST /{tenant}/oauth2/v2.0/token,
// client credentials with a client secret or a federated client assertion; a wrong client
// answers 401 invalid_client like Entra (AADSTS7000215).
//
// Usage: node entra_mock.mjs PORT TENANT CLIENT_ID CLIENT_SECRET ASSERTION
// Prints "READY" once listening; exits when stdin closes.
import { pathToFileURL } from 'node:url';
import path from 'node:path';

const [port, tenant, clientId, clientSecret, assertion] = process.argv.slice(2);
const lib = path.join(process.env.AIGW_NPM_DIR, 'node_modules/oauth2-mock-server/dist/index.mjs');
const { OAuth2Server } = await import(pathToFileURL(lib).href);

const server = new OAuth2Server(undefined, undefined, {
  endpoints: { token: `/${tenant}/oauth2/v2.0/token` },
});
await server.issuer.keys.generate('RS256');
let served = 0;
server.service.on('beforeResponse', (resp, req) => {
  const b = req.body;
  const reject = (status, error, description) => {
    resp.statusCode = status;
    resp.body = { error, error_description: description };
  };
  if (b.grant_type !== 'client_credentials') return reject(400, 'unsupported_grant_type', 'client_credentials only');
  if (b.client_id !== clientId) return reject(400, 'unauthorized_client', 'AADSTS700016: unknown application');
  if (b.scope !== 'https://cognitiveservices.azure.com/.default') return reject(400, 'invalid_scope', 'AADSTS70011: bad scope');
  if (b.client_secret !== undefined) {
    if (b.client_secret !== clientSecret) return reject(401, 'invalid_client', 'AADSTS7000215: Invalid client secret provided.');
  } else if (b.client_assertion_type === 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer') {
    if (b.client_assertion !== assertion) return reject(401, 'invalid_client', 'AADSTS700211: assertion rejected');
  } else {
    return reject(401, 'invalid_client', 'AADSTS7000216: client_assertion or client_secret required');
  }
  served += 1;
  resp.body.expires_in = 3599;
  resp.body.ext_expires_in = 3599;
});
await server.start(Number(port), '127.0.0.1');
process.stdout.write('READY\n');
process.stdin.resume();
process.stdin.on('end', async () => {
  await server.stop();
  process.exit(0);
});
