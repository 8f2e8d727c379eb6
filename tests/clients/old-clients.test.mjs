// Older synchronizer clients against the `tinybase-sync` kind: for tinybase 5.4.9, 6.7.5, 8.5.0
// and 9.7.1 (npm aliases tinybase-5 … tinybase-9), a client of that version and a 10.0.1 client
// converge through partyd, and a late client of that version gets everything from the server alone.
import {test} from 'node:test';
import assert from 'node:assert/strict';
import WebSocket from 'ws';
import {HOST, newRoom, sleep, until} from './lib.mjs';

assert.ok(HOST, 'PARTY_HOST must be set');

const load = async (name) => ({
  createMergeableStore: (await import(name)).createMergeableStore,
  createWsSynchronizer: (await import(`${name}/synchronizers/synchronizer-ws-client`)).createWsSynchronizer,
});

const connect = async (lib, room) => {
  const socket = new WebSocket(`ws://${HOST}/parties/sync/${room}`);
  await new Promise((resolve, reject) => (socket.once('open', resolve), socket.once('error', reject)));
  const store = lib.createMergeableStore();
  const synchronizer = await lib.createWsSynchronizer(store, socket, 1);
  await synchronizer.startSync();
  return {store, stop: () => synchronizer.destroy()};
};

for (const version of ['5', '6', '8', '9']) {
  test(`tinybase ${version}.x clients sync with 10.x clients and with the server`, async () => {
    const [old, current] = [await load(`tinybase-${version}`), await load('tinybase')];
    const room = newRoom();
    const a = await connect(old, room);
    const b = await connect(current, room);
    a.store.setCell('t', 'r', 'from', version);
    b.store.setValue('v10', true);
    await until(() => b.store.getCell('t', 'r', 'from') === version && a.store.getValue('v10') === true, 'the two versions converge');
    a.stop();
    b.stop();
    await sleep(50);
    const late = await connect(old, room);
    await until(() => late.store.getCell('t', 'r', 'from') === version && late.store.getValue('v10') === true, 'a late old client gets the data from the server');
    assert.deepEqual(late.store.getMergeableContentHashes(), a.store.getMergeableContentHashes());
    late.stop();
  });
}
