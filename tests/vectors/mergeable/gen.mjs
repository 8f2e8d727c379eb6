// Writes the MergeableStore and WebSocket-sync vectors that tests/mergeable_vectors.rs and
// tests/sync_transcript.rs read, by running the real TinyBase (and ws for the socket recordings)
// pinned in package.json. See README.md; `node gen.mjs [file …]` rewrites all files or the ones named.
import './lib/seed.mjs';
import {readFileSync} from 'node:fs';
import {dirname, join} from 'node:path';
import {fileURLToPath} from 'node:url';
import {reseed} from './lib/seed.mjs';
import {writeJson} from './lib/write.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const version = (name) => JSON.parse(readFileSync(join(here, 'node_modules', name, 'package.json'), 'utf8')).version;
const PINNED = {tinybase: '10.0.1', ws: '8.23.0'};
for (const [name, pinned] of Object.entries(PINNED)) {
  if (version(name) != pinned) throw new Error(`${name} ${version(name)} is installed, ${pinned} is pinned: run npm ci`);
}
if (process.versions.node.split('.')[0] != '20') console.warn(`Node ${process.versions.node}: the files were made with Node 20`);

// Imported after the seeding above: ws keeps the randomBytes it finds when it loads.
const {hashJson, hlcJson, valuesJson} = await import('./lib/basics.mjs');
const {storesJson, mergesJson} = await import('./lib/stores.mjs');
const {applyJson} = await import('./lib/apply.mjs');
const {diffsJson} = await import('./lib/diffs.mjs');
const {relayJson, persistJson, errorsJson} = await import('./lib/transcripts.mjs');

const FILES = {
  'hash.json': hashJson,
  'hlc.json': hlcJson,
  'values.json': valuesJson,
  'stores.json': storesJson,
  'merges.json': mergesJson,
  'diffs.json': diffsJson,
  'apply.json': applyJson,
  'transcripts/ws-relay.json': relayJson,
  'transcripts/ws-persist.json': persistJson,
  'transcripts/ws-errors.json': errorsJson,
};

const HEADER = {
  generator: `tests/vectors/mergeable/gen.mjs (tinybase ${PINNED.tinybase}, ws ${PINNED.ws}, Node 20)`,
  undefinedMarker: 'the string "\\uFFFC" stands for undefined (a deleted cell or value) everywhere in this file, as on the wire',
};

const names = process.argv.length > 2 ? process.argv.slice(2) : Object.keys(FILES);
for (const name of names) {
  if (!FILES[name]) throw new Error(`unknown file ${name}; one of: ${Object.keys(FILES).join(', ')}`);
  reseed(name);
  const started = Date.now();
  writeJson(join(here, name), {...HEADER, ...(await FILES[name]())});
  console.log(`${name} (${Date.now() - started} ms)`);
}
process.exit(0);
