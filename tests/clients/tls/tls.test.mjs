// partyd behind the nginx recipe in deploy/nginx/partyd.conf, over TLS, with the real clients:
// tinybase 10 createPartyKitPersister over partysocket (wss + https), plain fetch of the store,
// and createWsSynchronizer over a `wss://` ws socket. Run by scripts/test-tls, which starts
// nginx and partyd and sets the variables below; it lives in a subfolder so that scripts/test's
// `tests/clients/*.test.mjs` (plain http, no nginx) does not pick it up.
//
// The self-signed certificate is trusted through NODE_EXTRA_CA_CERTS: verification stays on,
// so a recipe that served the wrong certificate or name would fail here as it would in a browser.
import {test} from 'node:test';
import assert from 'node:assert/strict';
import tls from 'node:tls';
import WebSocket from 'ws';
import {PartySocket} from 'partysocket';
import {createStore, createMergeableStore} from 'tinybase';
import {createPartyKitPersister} from 'tinybase/persisters/persister-partykit-client';
import {createWsSynchronizer} from 'tinybase/synchronizers/synchronizer-ws-client';
import {newRoom, until, same} from '../lib.mjs';

/** nginx's TLS address (127.0.0.1:PORT), and its plain-http redirect address. */
const HOST = process.env.PARTYD_TLS_HOST;
const HTTP_HOST = process.env.PARTYD_TLS_HTTP_HOST;
assert.ok(
  HOST && HTTP_HOST && process.env.NODE_EXTRA_CA_CERTS,
  'tls.test.mjs runs through nginx: start it with scripts/test-tls (PARTYD_TLS_HOST, PARTYD_TLS_HTTP_HOST and NODE_EXTRA_CA_CERTS must be set)',
);
assert.notEqual(process.env.NODE_TLS_REJECT_UNAUTHORIZED, '0', 'certificate verification must stay on');
const [HOSTNAME, PORT] = [HOST.slice(0, HOST.lastIndexOf(':')), Number(HOST.slice(HOST.lastIndexOf(':') + 1))];
const storeUrl = (party, room) => `https://${HOST}/parties/${party}/${room}/store`;

const getStore = async (party, room) => {
  const response = await fetch(storeUrl(party, room));
  assert.equal(response.status, 200);
  const text = await response.text();
  return text === '' ? undefined : JSON.parse(text);
};

/** Proves a response came through nginx, not from partyd directly. */
const assertProxied = (response) => {
  assert.match(response.headers.get('server') ?? '', /^nginx/, 'the response came through nginx');
  assert.ok(response.headers.get('strict-transport-security'), 'the recipe\'s HSTS header is set');
};

const tlsConnect = (options) =>
  new Promise((resolve, reject) => {
    const socket = tls.connect({host: HOSTNAME, port: PORT, ...options}, () => resolve(socket));
    socket.once('error', reject);
  });

test('nginx serves a certificate Node verifies (trusted only through NODE_EXTRA_CA_CERTS)', async (t) => {
  const socket = await tlsConnect({ALPNProtocols: ['h2', 'http/1.1']});
  assert.equal(socket.authorized, true, `certificate verified: ${socket.authorizationError}`);
  t.diagnostic(`negotiated ${socket.getProtocol()}, ALPN ${socket.alpnProtocol}`);
  socket.destroy();
  // Without the extra CA (an explicit `ca` replaces every default one) the same server is refused:
  // verification is really on.
  await assert.rejects(tlsConnect({ca: [tls.rootCertificates[0]]}), (error) => /self[- ]signed|unable to verify/i.test(error.message));
});

/** A TinyBase store bound to `room` of party `main` by the real persister, over wss and https. */
const connectPersister = async (room, {seed, autoSave = true} = {}) => {
  const store = createStore();
  seed?.(store);
  const socket = new PartySocket({host: HOST, room, protocol: 'wss', WebSocket});
  await until(() => socket.readyState === WebSocket.OPEN, `the wss socket to main/${room} opens through nginx`);
  assert.match(socket.url, /^wss:\/\//);
  const errors = [];
  const persister = createPartyKitPersister(store, socket, {storeProtocol: 'https'}, (error) => errors.push(error));
  await persister.startAutoLoad();
  if (autoSave) await persister.startAutoSave();
  return {store, errors, stop: async () => (await persister.destroy(), socket.close())};
};

test('persister: two clients on one room save, load and see each other\'s changes live', async () => {
  const room = newRoom();
  const a = await connectPersister(room, {seed: (s) => s.setTables({pets: {fido: {species: 'dog'}}}).setValues({open: true})});
  assert.deepEqual(await getStore('main', room), [{pets: {fido: {species: 'dog'}}}, {open: true}], 'a\'s initial save (a PUT over https) created the store');
  const b = await connectPersister(room);
  assert.ok(same(b.store.getContent(), a.store.getContent()), 'b loaded the store (a GET over https)');

  a.store.setCell('pets', 'fido', 'legs', 4);
  await until(() => b.store.getCell('pets', 'fido', 'legs') === 4, 'b sees a\'s change over wss');
  b.store.setValue('open', false).delCell('pets', 'fido', 'species');
  await until(() => a.store.getValue('open') === false && !a.store.hasCell('pets', 'fido', 'species'), 'a sees b\'s change over wss');
  const expected = [{pets: {fido: {legs: 4}}}, {open: false}];
  let seen;
  await until(async () => same((seen = await getStore('main', room)), expected), () => `the server holds both changes: ${JSON.stringify(seen)}`);
  assert.deepEqual(a.errors, []);
  assert.deepEqual(b.errors, []);
  await a.stop();
  await b.stop();

  const c = await connectPersister(room, {autoSave: false});
  assert.ok(same(c.store.getContent(), expected), `a later client loads what was saved: ${JSON.stringify(c.store.getContent())}`);
  assert.deepEqual(c.errors, []);
  await c.stop();
});

test('plain fetch: PUT then GET of the store over https, big bodies included', async () => {
  const room = newRoom();
  const content = [{notes: {n1: {text: 'over TLS', n: 1}}}, {title: 'hello'}];
  const put = await fetch(storeUrl('main', room), {method: 'PUT', body: JSON.stringify(content)});
  assert.equal(put.status, 201, 'the first PUT creates the store');
  assertProxied(put);
  const again = await fetch(storeUrl('main', room), {method: 'PUT', body: JSON.stringify([{}, {title: 'other'}])});
  assert.equal(again.status, 205, 'a later PUT leaves the existing store alone');
  const get = await fetch(storeUrl('main', room));
  assert.equal(get.status, 200);
  assertProxied(get);
  assert.equal(get.headers.get('access-control-allow-origin'), '*', 'partyd\'s CORS headers pass through');
  assert.deepEqual(JSON.parse(await get.text()), content);

  // nginx's own default body limit is 1 MiB: the recipe must let a store up to partyd's 16 MiB
  // through, and partyd (or nginx, at the same size) refuses more.
  const bigRoom = newRoom();
  const big = [{blob: {r: {text: 'x'.repeat(15 * 1024 * 1024)}}}, {}];
  const bigPut = await fetch(storeUrl('main', bigRoom), {method: 'PUT', body: JSON.stringify(big)});
  assert.equal(bigPut.status, 201, `a 15 MiB store goes through: ${await bigPut.text()}`);
  assert.equal((await getStore('main', bigRoom))[0].blob.r.text.length, 15 * 1024 * 1024);
  const tooBig = await fetch(storeUrl('main', newRoom()), {method: 'PUT', body: JSON.stringify([{blob: {r: {text: 'x'.repeat(16 * 1024 * 1024)}}}, {}])});
  assert.equal(tooBig.status, 413);
});

test('only /parties/ is proxied, and plain http redirects to https', async () => {
  for (const path of ['/healthz', '/metrics', '/_partyd/rooms']) {
    const response = await fetch(`https://${HOST}${path}`);
    assert.equal(response.status, 404, `${path} stays on loopback`);
    await response.arrayBuffer();
  }
  const redirect = await fetch(`http://${HTTP_HOST}/parties/main/r1/store`, {redirect: 'manual'});
  assert.equal(redirect.status, 301);
  assert.match(redirect.headers.get('location') ?? '', /^https:\/\/[^/]+\/parties\/main\/r1\/store$/);
});

/** A MergeableStore synchronized with `room` of party `sync` over a `wss://` socket. */
const connectSync = async (room) => {
  const socket = new WebSocket(`wss://${HOST}/parties/sync/${room}`);
  await new Promise((resolve, reject) => (socket.once('open', resolve), socket.once('error', reject)));
  const store = createMergeableStore();
  const errors = [];
  const synchronizer = await createWsSynchronizer(store, socket, 1, undefined, undefined, (error) => errors.push(error));
  await synchronizer.startSync();
  return {store, errors, stop: () => synchronizer.destroy()};
};

test('tinybase-sync: two MergeableStores converge over wss, and the server holds the merge', async () => {
  const room = newRoom();
  const a = await connectSync(room);
  const b = await connectSync(room);
  a.store.setRow('pets', 'fido', {species: 'dog', legs: 4});
  b.store.setValue('open', true);
  await until(
    () => same(a.store.getContent(), b.store.getContent()) && b.store.getCell('pets', 'fido', 'legs') === 4 && a.store.getValue('open') === true,
    () => `a: ${JSON.stringify(a.store.getContent())} b: ${JSON.stringify(b.store.getContent())}`,
  );
  b.store.delCell('pets', 'fido', 'legs');
  await until(() => a.store.getCell('pets', 'fido', 'legs') === undefined, 'a sees b\'s deletion');
  let seen;
  await until(async () => same((seen = await getStore('sync', room)), a.store.getContent()), () => `the server merged the same: ${JSON.stringify(seen)}`);
  assert.deepEqual(seen, [{pets: {fido: {species: 'dog'}}}, {open: true}]);
  assert.deepEqual(a.errors, []);
  assert.deepEqual(b.errors, []);
  a.stop();
  b.stop();
});
