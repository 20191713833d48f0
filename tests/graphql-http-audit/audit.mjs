// Runs graphql-http's server audit (the GraphQL over HTTP specification's own compliance
// checks) against URL, with TOKEN as the bearer token of every request; prints one JSON array
// of {id, name, status, reason} on stdout.
//   node audit.mjs http://127.0.0.1:8000/graphql "$TOKEN"
import { auditServer } from 'graphql-http';

const [url, token] = process.argv.slice(2);

function fetchWithToken(input, init = {}) {
  const headers = new Headers(init.headers);
  headers.set('authorization', `Bearer ${token}`);
  return fetch(input, { ...init, headers });
}

const results = await auditServer({ url, fetchFn: fetchWithToken });
const summary = [];
for (const result of results) {
  const entry = { id: result.id, name: result.name, status: result.status };
  if (result.status !== 'ok') {
    entry.reason = result.reason;
    entry.status_code = result.response.status;
  }
  summary.push(entry);
}
console.log(JSON.stringify(summary));
