// The `tinybase-sync` kind with the real client stack: tinybase 10.0.1 MergeableStores and
// createWsSynchronizer over `ws`, against partyd (PARTY_HOST, party `sync`). Restart and crash
// tests start their own partyd from PARTYD_BIN on a fresh data dir.
import {test} from 'node:test';
import assert from 'node:assert/strict';
import {spawn} from 'node:child_process';
import {mkdtempSync, writeFileSync, rmSync} from 'node:fs';
import {tmpdir} from 'node:os';
import {join} from 'node:path';
import WebSocket from 'ws';
import {createMergeableStore} from 'tinybase';
import {createWsSynchronizer} from 'tinybase/synchronizers/synchronizer-ws-client';
import {HOST, newRoom, sleep, until, same} from './lib.mjs';

assert.ok(HOST, 'PARTY_HOST must be set');

/** A MergeableStore synchronized with `room` of party `sync` on `host`. */
const connect = async (room, {host = HOST, store = createMergeableStore(), fragmentSize} = {}) => {
  const socket = new WebSocket(`ws://${host}/parties/sync/${room}`);
  await new Promise((resolve, reject) => (socket.once('open', resolve), socket.once('error', reject)));
  const errors = [];
  const synchronizer = await createWsSynchronizer(store, socket, 1, undefined, undefined, (error) => errors.push(error), fragmentSize);
  await synchronizer.startSync();
  return {store, socket, errors, stop: () => synchronizer.destroy()};
};

const fetchText = async (host, path) => {
  const response = await fetch(`http://${host}${path}`);
  assert.equal(response.status, 200, path);
  return response.text();
};
/** The server's merged store, as the plain curl dump. */
const serverContent = async (room, host = HOST) => JSON.parse(await fetchText(host, `/parties/sync/${room}/store`));
/** The server's content hashes, from the mergeable dump. */
const serverHashes = async (room, host = HOST) => {
  const [[, , tablesHash], [, , valuesHash]] = JSON.parse(await fetchText(host, `/parties/sync/${room}/store?format=mergeable`));
  return [tablesHash, valuesHash];
};
const converged = (clients) => clients.every((client) => same(client.store.getContent(), clients[0].store.getContent()));

test('two clients converge through partyd, and its dump shows the merged store', async () => {
  const room = newRoom();
  const a = await connect(room);
  const b = await connect(room);
  a.store.setRow('pets', 'fido', {species: 'dog', legs: 4});
  b.store.setValue('open', true);
  await until(() => converged([a, b]) && b.store.getCell('pets', 'fido', 'legs') === 4 && a.store.getValue('open') === true, 'both see both writes');
  a.store.delCell('pets', 'fido', 'legs');
  await until(() => b.store.getCell('pets', 'fido', 'legs') === undefined, 'b sees the deletion');
  await until(async () => same(await serverContent(room), a.store.getContent()), 'the server holds the same');
  assert.deepEqual(await serverContent(room), [{pets: {fido: {species: 'dog'}}}, {open: true}]);
  assert.deepEqual(await serverHashes(room), Object.values(a.store.getMergeableContentHashes()));
  assert.deepEqual(a.errors, []);
  assert.deepEqual(b.errors, []);
  a.stop();
  b.stop();
});

test('a client that joins after the writer left gets the data from the server alone', async () => {
  const room = newRoom();
  const a = await connect(room);
  a.store.setTable('notes', {n1: {text: 'written offline-first', order: 1}});
  a.store.setValue('title', 'hello');
  await until(async () => same(await serverContent(room), a.store.getContent()), 'the server merged a');
  a.stop();
  await sleep(100);
  const b = await connect(room);
  await until(() => same(b.store.getContent(), a.store.getContent()), 'b has a\'s data with nobody else online');
  assert.deepEqual(b.store.getMergeableContentHashes(), a.store.getMergeableContentHashes());
  b.stop();
});

test('concurrent conflicting writes on three clients converge to TinyBase\'s own merge', async () => {
  const room = newRoom();
  const stores = ['one', 'two', 'three'].map(() => createMergeableStore());
  // Offline writes, conflicting on the same cells and value, with deletions.
  stores[0].setRow('t', 'r', {a: 1, b: 'one'}).setValue('v', 1);
  stores[1].setRow('t', 'r', {a: 2, c: true}).setValue('v', 2);
  stores[2].setRow('t', 'r', {a: 3}).setRow('t', 's', {x: 1}).delValue('v');
  stores[1].delCell('t', 'r', 'c');
  // What TinyBase's own merge gives, computed locally on copies.
  const reference = createMergeableStore();
  for (const store of stores) reference.applyMergeableChanges(store.getMergeableContent());
  const clients = [];
  for (const store of stores) clients.push(await connect(room, {store}));
  await until(() => converged(clients) && same(clients[0].store.getContent(), reference.getContent()), () => `convergence: ${JSON.stringify(clients.map((c) => c.store.getContent()))} vs ${JSON.stringify(reference.getContent())}`);
  for (const client of clients) assert.deepEqual(client.store.getMergeableContentHashes(), reference.getMergeableContentHashes());
  await until(async () => same(await serverContent(room), reference.getContent()), 'the server merged the same');
  assert.deepEqual(await serverHashes(room), Object.values(reference.getMergeableContentHashes()));
  for (const client of clients) client.stop();
});

test('a large store sent in fragments reaches the server and the other client', async () => {
  const room = newRoom();
  const a = await connect(room, {fragmentSize: 4096});
  const b = await connect(room, {fragmentSize: 4096});
  const rows = {};
  for (let i = 0; i < 2000; i++) rows[`row${i}`] = {text: `some text for row ${i} `.repeat(3), n: i};
  a.store.setTable('big', rows);
  await until(() => b.store.getRowCount('big') === 2000, () => `b has ${b.store.getRowCount('big')} rows`, 15000);
  await until(async () => Object.keys((await serverContent(room))[0].big ?? {}).length === 2000, 'the server has every row', 15000);
  assert.deepEqual(await serverHashes(room), Object.values(a.store.getMergeableContentHashes()));
  const c = await connect(room);
  await until(() => c.store.getRowCount('big') === 2000, 'a late client pulls the large store from the server', 15000);
  a.stop();
  b.stop();
  c.stop();
});

test('malformed frames close the sender with 1007 and never reach others or storage', async () => {
  const room = newRoom();
  const a = await connect(room);
  a.store.setValue('kept', 'yes');
  await until(async () => (await serverContent(room))[1].kept === 'yes', 'the good write is stored');
  const frames = [
    'no newline at all',
    '\nnot json',
    '\n[null,9,""]',
    '\n["x",3,[[{"t":[{"r":[{"c":[1,"NjEtLV-----67WEb",123]}]}]}],[{}],1]]',
    '\n[5,1,""]',
    '\n["x",4,{"t":"not a hash"}]',
  ];
  for (const frame of frames) {
    const raw = new WebSocket(`ws://${HOST}/parties/sync/${room}`);
    await new Promise((resolve) => raw.once('open', resolve));
    const closed = new Promise((resolve) => raw.once('close', (code, reason) => resolve([code, reason.toString()])));
    raw.send(frame);
    assert.deepEqual(await closed, [1007, 'tinybase:14'], JSON.stringify(frame));
  }
  assert.deepEqual(await serverContent(room), [{}, {kept: 'yes'}]);
  a.store.setValue('after', 1);
  await until(async () => (await serverContent(room))[1].after === 1, 'the room still works');
  assert.deepEqual(a.errors, []);
  a.stop();
});

test('one multiplexed socket syncs two rooms as channels, beside a legacy client of one of them', async () => {
  const [pets, staff] = [newRoom(), newRoom()];
  const socket = new WebSocket(`ws://${HOST}/parties/sync`, 'tinybase');
  await new Promise((resolve, reject) => (socket.once('open', resolve), socket.once('error', reject)));
  assert.equal(socket.protocol, 'tinybase');
  const errors = [];
  const channel = async (id) => {
    const store = createMergeableStore();
    const synchronizer = await createWsSynchronizer(store, socket, id, 1, undefined, undefined, (error) => errors.push(error), 64);
    await synchronizer.startSync();
    return {store, stop: () => synchronizer.destroy()};
  };
  const a = await channel(pets);
  const b = await channel(staff);
  const legacy = await connect(pets);
  a.store.setRow('pets', 'fido', {species: 'dog', note: 'wünderbar 😀 long enough to be cut into fragments'});
  b.store.setValue('staff', 3);
  legacy.store.setValue('open', true);
  await until(() => same(legacy.store.getContent(), a.store.getContent()) && a.store.getValue('open') === true && legacy.store.getCell('pets', 'fido', 'species') === 'dog', 'the channel and the legacy client converge');
  await until(async () => same(await serverContent(pets), a.store.getContent()) && (await serverContent(staff))[1].staff === 3, 'the server holds both rooms');
  assert.deepEqual(await serverContent(staff), [{}, {staff: 3}]);
  assert.equal(b.store.getValue('open'), undefined, 'channels are separate rooms');
  assert.deepEqual(errors, []);
  // Unsubscribing one channel keeps the other.
  b.stop();
  legacy.store.setValue('later', 1);
  await until(() => a.store.getValue('later') === 1, 'the remaining channel still syncs');
  a.stop();
  legacy.stop();
});

test('multiplexed sockets: refused on a room path, and closed for data before Hello or for channels not subscribed', async () => {
  const onRoom = new WebSocket(`ws://${HOST}/parties/sync/${newRoom()}`, 'tinybase');
  const status = await new Promise((resolve) => onRoom.once('unexpected-response', (_req, response) => resolve(response.statusCode)));
  assert.equal(status, 400);
  for (const frames of [['M\nroom\n\n[null,1,""]'], ['S\n["abcdefghijklmnop",-1,[0,1]]', 'M\nnot-subscribed\n\n[null,1,""]'], ['S\n["abcdefghijklmnop",-1,[0,1]]', 'S\n["abcdefghijklmnop",-1,[1,"a/b"]]'], ['\n[null,1,""]']]) {
    const raw = new WebSocket(`ws://${HOST}/parties/sync`, 'tinybase');
    await new Promise((resolve) => raw.once('open', resolve));
    const closed = new Promise((resolve) => raw.once('close', (code, reason) => resolve([code, reason.toString()])));
    for (const frame of frames) raw.send(frame);
    assert.deepEqual(await closed, [1007, 'tinybase:14'], JSON.stringify(frames));
  }
});

/** A partyd of our own on a fresh port, for restart and crash tests. */
const startOwn = async (dataDir) => {
  const child = spawn(process.env.PARTYD_BIN, ['--config', join(dataDir, 'party.toml'), '--listen', '127.0.0.1:0', '--data-dir', join(dataDir, 'data'), '--log-format', 'pretty'], {stdio: ['ignore', 'ignore', 'pipe']});
  let log = '';
  child.stderr.on('data', (chunk) => (log += chunk));
  await until(() => /listening on (127\.0\.0\.1:\d+)/.test(log), () => `partyd starts: ${log}`, 10000);
  return {child, host: /listening on (127\.0\.0\.1:\d+)/.exec(log)[1]};
};

test('restart and SIGKILL keep what clients saw', async () => {
  assert.ok(process.env.PARTYD_BIN, 'PARTYD_BIN must name the partyd binary');
  const dir = mkdtempSync(join(tmpdir(), 'partyd-sync-'));
  writeFileSync(join(dir, 'party.toml'), '[parties.sync]\nkind = "tinybase-sync"\n');
  try {
    let server = await startOwn(dir);
    const a = await connect('r', {host: server.host});
    const b = await connect('r', {host: server.host});
    a.store.setRow('t', 'r1', {v: 1});
    // What b has seen was on disk before it was relayed.
    await until(() => b.store.getCell('t', 'r1', 'v') === 1, 'b sees the write');
    const seen = b.store.getMergeableContentHashes();
    server.child.kill('SIGKILL');
    await new Promise((resolve) => server.child.once('exit', resolve));
    a.stop();
    b.stop();
    server = await startOwn(dir);
    const c = await connect('r', {host: server.host});
    await until(() => c.store.getCell('t', 'r1', 'v') === 1, 'after SIGKILL the write is there');
    assert.deepEqual(c.store.getMergeableContentHashes(), seen);
    c.store.setValue('later', 2);
    await until(async () => (await serverContent('r', server.host))[1].later === 2, 'the server merged c');
    server.child.kill('SIGTERM');
    assert.equal(await new Promise((resolve) => server.child.once('exit', resolve)), 0);
    c.stop();
    server = await startOwn(dir);
    assert.deepEqual(await serverContent('r', server.host), [{t: {r1: {v: 1}}}, {later: 2}]);
    server.child.kill('SIGTERM');
    await new Promise((resolve) => server.child.once('exit', resolve));
  } finally {
    rmSync(dir, {recursive: true, force: true});
  }
});
