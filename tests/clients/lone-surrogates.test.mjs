// Lone UTF-16 surrogates with the real clients (tinybase 10.0.1): JavaScript strings may hold
// them — an emoji cut in half, 'x\ud83d' — and JSON.stringify sends them as `\udxxx` escapes.
// TinyBase's own servers store and relay such changes; partyd must too, for both party kinds.
import {test} from 'node:test';
import assert from 'node:assert/strict';
import WebSocket from 'ws';
import {PartySocket} from 'partysocket';
import {createStore, createMergeableStore} from 'tinybase';
import {createPartyKitPersister} from 'tinybase/persisters/persister-partykit-client';
import {createWsSynchronizer} from 'tinybase/synchronizers/synchronizer-ws-client';
import {HOST, newRoom, until, same} from './lib.mjs';

assert.ok(HOST, 'PARTY_HOST must be set');

const fetchText = async (path) => {
  const response = await fetch(`http://${HOST}${path}`);
  assert.equal(response.status, 200, path);
  return response.text();
};

/** A store bound to a room of the `typed` persister party (its tables other than `todos` are free). */
const persisterClient = async (room, seed) => {
  const store = createStore();
  seed?.(store);
  const socket = new PartySocket({host: HOST, party: 'typed', room, protocol: 'ws', WebSocket});
  await until(() => socket.readyState === WebSocket.OPEN, `the socket to typed/${room} opens`);
  const errors = [];
  const persister = createPartyKitPersister(store, socket, {storeProtocol: 'http'}, (error) => errors.push(error));
  await persister.startAutoLoad();
  await persister.startAutoSave();
  return {store, errors, stop: async () => (await persister.destroy(), socket.close())};
};

/** A MergeableStore synchronized with a room of the `sync` party. */
const syncClient = async (room) => {
  const socket = new WebSocket(`ws://${HOST}/parties/sync/${room}`);
  await new Promise((resolve, reject) => (socket.once('open', resolve), socket.once('error', reject)));
  const store = createMergeableStore();
  const errors = [];
  const synchronizer = await createWsSynchronizer(store, socket, 1, undefined, undefined, (error) => errors.push(error));
  await synchronizer.startSync();
  return {store, errors, stop: () => synchronizer.destroy()};
};

test('tinybase-persister: a cut emoji set by one client reaches the other and the store', async () => {
  const room = newRoom();
  const a = await persisterClient(room, (store) => store.setCell('t', 'r', 'c', 'x'));
  const b = await persisterClient(room);
  await until(() => b.store.getCell('t', 'r', 'c') === 'x', 'b loaded the store');
  a.store.setCell('t', 'r', 'c', 'x\ud83d');
  await until(() => b.store.getCell('t', 'r', 'c') === 'x\ud83d', () => `b has the cut emoji, not ${JSON.stringify(b.store.getCell('t', 'r', 'c'))}`);
  // TinyBase's server answers GET with JSON.stringify of what it stored.
  assert.equal(await fetchText(`/parties/typed/${room}/store`), JSON.stringify([{t: {r: {c: 'x\ud83d'}}}, {}]));
  assert.equal(await fetchText(`/parties/typed/${room}/store`), '[{"t":{"r":{"c":"x\\ud83d"}}},{}]');

  // In ids and values too, also inside an object value, and a later client loads them all.
  b.store.setCell('t\ud800', 'r\udc00', 'c\udfff', '\ude00\ud83d').setValue('v\ud83d', {'\ud800': ['\udbff']});
  const expected = [{t: {r: {c: 'x\ud83d'}}, 't\ud800': {'r\udc00': {'c\udfff': '\ude00\ud83d'}}}, {'v\ud83d': {'\ud800': ['\udbff']}}];
  await until(() => same(a.store.getContent(), expected), () => `a has b's changes: ${JSON.stringify(a.store.getContent())}`);
  // The client sends an object value as TinyBase 10 encodes it: a string, U+FFFD then its JSON.
  const served = JSON.stringify([expected[0], {'v\ud83d': '\ufffd' + JSON.stringify(expected[1]['v\ud83d'])}]);
  let stored;
  await until(async () => (stored = await fetchText(`/parties/typed/${room}/store`)) === served, () => `the server stored them: ${stored}`);
  const late = await persisterClient(room);
  await until(() => same(late.store.getContent(), expected), 'a late client loads them');
  for (const client of [a, b, late]) {
    assert.deepEqual(client.errors, []);
    await client.stop();
  }
});

test('tinybase-sync: lone surrogates in ids and values merge, relay and are kept by the server', async () => {
  const room = newRoom();
  const a = await syncClient(room);
  const b = await syncClient(room);
  a.store.setCell('t', 'r', 'c', 'x\ud83d').setCell('t\ud800', 'r\udc00', 'c\udfff', '\ude00\ud83d').setValue('v\ud83d', '\ud800');
  await until(() => same(b.store.getContent(), a.store.getContent()), () => `b converged: ${JSON.stringify(b.store.getContent())}`);
  assert.equal(b.store.getCell('t', 'r', 'c'), 'x\ud83d');
  const content = JSON.stringify(a.store.getContent());
  await until(async () => (await fetchText(`/parties/sync/${room}/store`)) === content, 'the server merged it');
  const [[, , tablesHash], [, , valuesHash]] = JSON.parse(await fetchText(`/parties/sync/${room}/store?format=mergeable`));
  assert.deepEqual([tablesHash, valuesHash], Object.values(a.store.getMergeableContentHashes()));
  a.stop();
  b.stop();
  const late = await syncClient(room);
  await until(() => JSON.stringify(late.store.getContent()) === content, 'a late client gets it from the server alone');
  for (const client of [a, b, late]) assert.deepEqual(client.errors, []);
  late.stop();
});
