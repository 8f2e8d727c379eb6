// partyd's own tests with the real client stack (tinybase 10 createPartyKitPersister over
// partysocket): tokens in the socket query and the store path, a read-only client, and schema /
// permission refusals that leave the sender equal to the server.
import {test} from 'node:test';
import assert from 'node:assert/strict';
import {createHmac} from 'node:crypto';
import WebSocket from 'ws';
import {PartySocket} from 'partysocket';
import {createStore} from 'tinybase';
import {createPartyKitPersister} from 'tinybase/persisters/persister-partykit-client';
import {HOST, newRoom, sleep, until, sorted, same} from './lib.mjs';

const SECRET = process.env.PARTYD_CLIENT_TEST_SECRET;
assert.ok(HOST && SECRET, 'PARTY_HOST and PARTYD_CLIENT_TEST_SECRET must be set');

const base64url = (text) => Buffer.from(text).toString('base64url');
/** An HS256 JWT, minted by hand (what jsonwebtoken.sign(claims, secret) makes). */
const jwt = (claims) => {
  const body = `${base64url(JSON.stringify({alg: 'HS256', typ: 'JWT'}))}.${base64url(JSON.stringify({exp: Math.floor(Date.now() / 1000) + 600, ...claims}))}`;
  return `${body}.${createHmac('sha256', SECRET).update(body).digest('base64url')}`;
};

/** A TinyBase store bound to a room by the real persister; `token` goes in the socket query and the store path. */
const connectClient = async (party, room, {token, seed} = {}) => {
  const store = createStore();
  seed?.(store);
  const socket = new PartySocket({host: HOST, party, room, protocol: 'ws', WebSocket, query: token ? {token} : undefined});
  await until(() => socket.readyState === WebSocket.OPEN, `the socket to ${party}/${room} opens`);
  const errors = [];
  const storePath = token ? `/store?token=${encodeURIComponent(token)}` : '/store';
  const persister = createPartyKitPersister(store, socket, {storeProtocol: 'http', storePath}, (error) => errors.push(error));
  await persister.startAutoLoad();
  await persister.startAutoSave();
  return {store, errors, stop: async () => (await persister.destroy(), socket.close())};
};

const serverStore = async (party, room, token) => {
  const response = await fetch(`http://${HOST}/parties/${party}/${room}/store${token ? `?token=${token}` : ''}`);
  assert.equal(response.status, 200);
  const text = await response.text();
  return text === '' ? undefined : JSON.parse(text);
};

const content = (client) => client.store.getContent();

test('tokens in the socket query and the store path: writers write, readers only read', async () => {
  const room = newRoom();
  const writerToken = jwt({rooms: ['c-*']});
  const writer = await connectClient('secure', room, {token: writerToken, seed: (s) => s.setValues({open: true})});
  assert.deepEqual(await serverStore('secure', room, writerToken), [{}, {open: true}], 'the PUT with the token created the store');
  const reader = await connectClient('secure', room, {token: jwt({access: 'read'})});
  assert.ok(same(content(reader), [{}, {open: true}]), 'the reader loaded the store');

  writer.store.setCell('pets', 'fido', 'legs', 4);
  await until(() => reader.store.getCell('pets', 'fido', 'legs') === 4, 'the reader sees the writer\'s change');
  reader.store.setValue('hacked', true);
  writer.store.setValue('after', 1);
  await until(() => reader.store.getValue('after') === 1, 'the reader sees the later change');
  // A read-only connection's changes are dropped where they arrive, so nothing can announce that
  // they were handled: give them time to (wrongly) come through.
  await sleep(300);
  assert.equal(writer.store.hasValue('hacked'), false, 'the reader\'s change never reached the writer');
  assert.deepEqual(await serverStore('secure', room, writerToken), [{pets: {fido: {legs: 4}}}, {open: true, after: 1}]);
  assert.deepEqual(reader.errors.map((error) => error?.status), [403], 'the reader\'s initial save (a PUT) was refused; its load worked');
  await writer.stop();
  await reader.stop();
});

test('without a valid token nothing of the room is reachable', async () => {
  const room = newRoom();
  assert.equal((await fetch(`http://${HOST}/parties/secure/${room}/store`)).status, 401);
  assert.equal((await fetch(`http://${HOST}/parties/secure/${room}/store?token=${jwt({rooms: ['elsewhere']})}`)).status, 403);
  const refused = await new Promise((resolve) => {
    const ws = new WebSocket(`ws://${HOST}/parties/secure/${room}?_pk=x`);
    ws.on('unexpected-response', (_request, response) => resolve(response.statusCode));
    ws.on('open', () => resolve('open'));
  });
  assert.equal(refused, 401);
});

test('schema and permission refusals leave the sender equal to the server', async () => {
  const room = newRoom();
  const one = await connectClient('typed', room, {seed: (s) => s.setTables({todos: {t1: {text: 'a', done: false}}, log: {e1: {msg: 'start'}}}).setValues({version: 1})});
  const two = await connectClient('typed', room);
  one.store.setCell('todos', 't1', 'done', 'yes');
  one.store.setCell('todos', 't1', 'text', 'b');
  one.store.setCell('todos', 't2', 'owner', 'me');
  one.store.delRow('log', 'e1');
  one.store.setValue('version', 2);
  const expected = [{todos: {t1: {text: 'b', done: false}}, log: {e1: {msg: 'start'}}}, {version: 1}];
  let seen;
  await until(async () => same((seen = await serverStore('typed', room)), expected), () => `server: ${JSON.stringify(seen)}`);
  await until(() => same(content(one), expected) && same(content(two), expected), () => `one: ${JSON.stringify(content(one))} two: ${JSON.stringify(content(two))}`);
  await one.stop();
  await two.stop();
});
