// Runs TinyBase 10.0.1's TinyBasePartyKitServer (the reference) on an in-memory Durable Object
// storage stand-in (keys listed in UTF-8 byte order, values structured-cloned) and records, per
// scenario: the PUT status, each frame's broadcast (or null), and the GET body.
//
// Regenerate (from any directory holding `npm i tinybase@10.0.1`):
//   node scenarios.mjs > /tmp/scenarios.json
//   TINYBASE_SERVER=$PWD/node_modules/tinybase/persisters/persister-partykit-server/index.js \
//     node gen.mjs /tmp/scenarios.json > reference.json
// The storage stand-in lists keys in UTF-8 byte order, as spec §7 says Durable Objects do.
const {TinyBasePartyKitServer} = await import(process.env.TINYBASE_SERVER ?? 'tinybase/persisters/persister-partykit-server');

class Storage {
  m = new Map();
  async get(k) { return structuredClone(this.m.get(k)); }
  async list({prefix = ''} = {}) {
    const keys = [...this.m.keys()].filter((k) => k.startsWith(prefix)).sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
    return new Map(keys.map((k) => [k, structuredClone(this.m.get(k))]));
  }
  async put(entries) { for (const k of Object.keys(entries)) this.m.set(k, structuredClone(entries[k])); }
  async delete(keys) { for (const k of keys) this.m.delete(k); }
  async transaction(fn) { return fn(this); }
}

const run = async ({put, frames = []}) => {
  const broadcasts = [];
  const party = {storage: new Storage(), broadcast: (message) => broadcasts.push(message)};
  const server = new TinyBasePartyKitServer(party);
  const url = 'http://h/parties/main/r/store';
  // A request stand-in: Node's Request#text() strips a leading BOM, workerd's does not (spec §3.3).
  const request = (method, body = '') => ({url, method, text: async () => body});
  const status = (await server.onRequest(request('PUT', put))).status;
  const out = [];
  for (const frame of frames) {
    const before = broadcasts.length;
    try { await server.onMessage(frame, {id: 'x'}); } catch { /* a throwing message is ignored too */ }
    out.push(broadcasts.length > before ? broadcasts[before] : null);
  }
  const get = await (await server.onRequest(request('GET'))).text();
  return {put, frames, expect: {put: status, broadcasts: out, get}};
};

const M = '\uFFFC';
const scenarios = JSON.parse(await (await import('node:fs/promises')).readFile(process.argv[2], 'utf8'));
const results = [];
for (const s of scenarios) results.push(await run(s));
console.log(JSON.stringify(results, null, 1));
