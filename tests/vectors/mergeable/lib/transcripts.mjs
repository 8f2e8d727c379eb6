// transcripts/ws-relay.json, ws-persist.json and ws-errors.json: TinyBase 10's createWsServer
// over real sockets (ws), with real TinyBase clients (createWsSynchronizer) or hand-made frames,
// recorded on the server side by lib/network.mjs. Every store reads one fake clock.
import {createMergeableStore} from 'tinybase/mergeable-store';
import {createDurableObjectStoragePersister} from 'tinybase/persisters/persister-durable-object-storage';
import {createWsSynchronizer} from 'tinybase/synchronizers/synchronizer-ws-client';
import {createWsServer} from 'tinybase/synchronizers/synchronizer-ws-server';
import {Network} from './network.mjs';
import {T0} from './stores.mjs';
import {overTheWire} from './write.mjs';

const NOTES = [
  'Events are seen from the server: `in` = a frame a client sent, `out` = a frame the server sent. `conn` ' +
    'names the client socket; its clientId is its Sec-WebSocket-Key, which the server uses as the client id.',
  'Every MergeableStore (clients and server) reads one fake clock, which starts at 1700000000000 ms and is ' +
    'moved by the scenario. Ids and Sec-WebSocket-Keys come from a seeded generator.',
  'Clients send one frame at a time and get the server\'s frames one at a time, in the order the server ' +
    'sent them, each once everything before it has been handled: each step waits until all traffic it ' +
    'caused (timeouts included) has stopped.',
];

// A Durable Object storage stand-in: keys listed in UTF-8 byte order, values structured-cloned.
class MemoryStorage {
  map = new Map();

  keys(prefix = '') {
    return [...this.map.keys()]
      .filter((key) => key.startsWith(prefix))
      .sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
  }

  async list({prefix = ''} = {}) {
    return new Map(this.keys(prefix).map((key) => [key, structuredClone(this.map.get(key))]));
  }

  async put(entries) {
    for (const [key, value] of Object.entries(entries)) this.map.set(key, structuredClone(value));
  }

  async transaction(action) {
    return action(this);
  }

  entries() {
    return overTheWire(Object.fromEntries(this.keys().map((key) => [key, this.map.get(key)])));
  }
}

// A TinyBase client on a gated socket of `network`, with its own store on `clock`.
const client = async (network, clock, name, path, write = () => {}) => {
  const store = createMergeableStore(name, () => clock.now);
  write(store);
  const conn = await network.open(name, path);
  conn.store = store;
  conn.synchronizer = await createWsSynchronizer(store, conn.gate, 1);
  await network.settle();
  return conn;
};

// startSync runs until its requests are answered or time out, so the network runs meanwhile.
const startSync = async (network, conn) => {
  const started = conn.synchronizer.startSync();
  await network.settle();
  await network.idle();
  await started;
};

const finalState = (conns) =>
  Object.fromEntries(conns.map(({name, store}) => [name, overTheWire({tables: store.getTables(), values: store.getValues()})]));

const transcript = async (about, attach, scenario) => {
  const network = new Network();
  const clock = {now: T0};
  await network.start((wss) => attach(wss, network, clock));
  try {
    const final = await scenario(network, clock);
    return {about, notes: NOTES, events: network.events, final};
  } finally {
    await network.stop();
  }
};

export const relayJson = () =>
  transcript(
    'Two legacy clients through createWsServer without a persister: the server only relays.',
    (wss) => createWsServer(wss),
    async (network, clock) => {
      network.step(
        'ada connects to /room1 with a cell already set and starts sync alone: her GetContentHashes ' +
          'broadcast times out after 1 s',
      );
      const ada = await client(network, clock, 'ada', '/room1', (store) => store.setCell('todos', 't1', 'title', 'milk'));
      await startSync(network, ada);
      network.step('ben connects with a value set and starts sync: he pulls from ada, then ada pulls from him');
      clock.now = T0 + 1_000;
      const ben = await client(network, clock, 'ben', '/room1', (store) => store.setValue('theme', 'dark'));
      await startSync(network, ben);
      network.step('ada sets a cell: one ContentDiff, relayed to ben');
      clock.now = T0 + 2_000;
      ada.store.setCell('todos', 't1', 'done', false);
      await network.settle();
      network.step('ben deletes a cell and sets an object cell in one transaction');
      clock.now = T0 + 3_000;
      ben.store.transaction(() => ben.store.delCell('todos', 't1', 'title').setCell('todos', 't1', 'meta', {tags: ['x']}));
      await network.settle();
      network.step('ada adds a row and replaces the values in one transaction');
      clock.now = T0 + 4_000;
      ada.store.transaction(() => ada.store.setRow('todos', 't2', {title: 'eggs', n: 2}).setValues({theme: 'light', count: 1}));
      await network.settle();
      network.step('ben leaves, then ada leaves');
      await network.close(ben);
      await network.close(ada);
      return finalState([ada, ben]);
    },
  );

export const persistJson = () => {
  const storage = new MemoryStorage();
  return transcript(
    'createWsServer whose createPersisterForPath returns a createDurableObjectStoragePersister over an ' +
      'in-memory storage: the server takes part as the client "S" and keeps the path\'s data. `storage` ' +
      'events are snapshots of that storage.',
    (wss, network, clock) =>
      createWsServer(wss, (pathId) => {
        network.event({ev: 'createPersisterForPath', pathId});
        return createDurableObjectStoragePersister(createMergeableStore('server', () => clock.now), storage);
      }),
    async (network, clock) => {
      const snapshot = (label) => network.event({storage: label, entries: storage.entries()});
      network.step(
        'ada connects to /room1: the server creates its store for the path, loads it (empty) and asks ada for ' +
          'hashes; ada is not syncing yet, so the request times out after 1 s and the server broadcasts its hashes',
      );
      const ada = await client(network, clock, 'ada', '/room1', (store) => store.setCell('todos', 't1', 'title', 'milk'));
      await network.idle();
      snapshot('after the server started for ada');
      network.step('ada starts sync: she pulls from the server (S), then the server pulls from her');
      await startSync(network, ada);
      snapshot('after ada synced');
      network.step('ben connects and starts sync: the server answers him first, and ada\'s answer comes too late');
      clock.now = T0 + 1_000;
      const ben = await client(network, clock, 'ben', '/room1', (store) => store.setValue('theme', 'dark'));
      await startSync(network, ben);
      network.step('ada sets a cell; ben deletes the title');
      clock.now = T0 + 2_000;
      ada.store.setCell('todos', 't1', 'done', false);
      await network.settle();
      clock.now = T0 + 3_000;
      ben.store.delCell('todos', 't1', 'title');
      await network.settle();
      snapshot('after the edits');
      network.step('everyone leaves: the path stops and the server discards its store');
      await network.close(ada);
      await network.close(ben);
      while (network.server.getPathIds().length) await new Promise((resolve) => setTimeout(resolve, 5));
      network.step(
        'cy connects alone later: the server loads its new store from storage (children in key order); after ' +
          'its start-up request times out, cy syncs and gets everything',
      );
      clock.now = T0 + 10_000;
      const cy = await client(network, clock, 'cy', '/room1');
      await network.idle();
      await startSync(network, cy);
      network.step('cy adds a row: the server saves it');
      clock.now = T0 + 11_000;
      cy.store.setRow('todos', 't2', {title: 'eggs', done: true});
      await network.settle();
      snapshot('after cy');
      await network.close(cy);
      return finalState([ada, ben, cy]);
    },
  );
};

// Hand-made frames, each on a new socket to /errors of a relay-only server. After the frame the
// socket either has been closed by the server, or closes itself (1005) to show it was not.
const ERROR_FRAMES = [
  ['no newline', 'hello'],
  ['an empty payload', ''],
  ['not JSON', '\nnot json'],
  ['JSON but not an array', '\n{"a":1}'],
  ['an unknown message number', '\n["r",9,""]'],
  ['a fractional message number', '\n["r",1.5,""]'],
  ['GetContentHashes with a body', '\n["r",1,"x"]'],
  ['a request id that is a number', '\n[5,1,""]'],
  ['an array of four', '\n["r",1,"",0]'],
  ['ContentHashes with a negative hash', '\n["r",2,[1,-1]]'],
  ['ContentHashes with a hash of 2^32', '\n["r",2,[4294967296,0]]'],
  ['ContentHashes with three hashes', '\n["r",2,[1,2,3]]'],
  ['a bad HLC in a ContentDiff', '\n["r",3,[[{"t":[{"r":[{"c":[1,"short"]}]}]}],[{}],1]]'],
  ['a stamp with a hash in a ContentDiff', '\n["r",3,[[{"t":[{"r":[{"c":[1,"NjEtLV-----Pf_Pe",5]}]}]}],[{}],1]]'],
  ['a ContentDiff ending in 2', '\n["r",3,[[{}],[{}],2]]'],
  ['GetTableDiff with a string hash', '\n["r",4,{"t":"x"}]'],
  ['GetRowDiff one level too shallow', '\n["r",5,{"t":1}]'],
  ['GetCellDiff one level too shallow', '\n["r",6,{"t":{"r":1}}]'],
  ['a fragment with a total over 1000', '\nAAAAAAAAAAAAAAAA\n0\n1001\n["r"'],
  ['a fragment index out of range', '\nAAAAAAAAAAAAAAAA\n2\n2\n["r"'],
  ['data before Hello on a tinybase-protocol socket', 'M\nch\n\n["r",1,""]', {protocol: 'tinybase'}],
  ['a broadcast GetContentHashes with nobody else on the path', '\n["r",1,""]'],
  ['a null request id', '\n[null,1,""]'],
  ['a ContentDiff of two elements (no trailing 1)', '\n["r",3,[[{}],[{}]]]'],
  [
    'a ContentDiff deleting a cell and setting a JSON cell',
    '\n["r",3,[[{"t":[{"r":[{"c":["\uFFFC","NjEtLV-----Pf_Pe"],"d":["\uFFFD[1]","NjEtLV----0Pf_Pe"]}]}]}],[{}],1]]',
  ],
  ['a response directed to an unknown client: dropped silently', 'nobody\n["r",0,[1,2]]'],
  ['directed to S without a server store: dropped silently', 'S\n["r",1,""]'],
  ['a binary frame carrying a valid payload', '\n["r",1,""]', {binary: true}],
];

export const errorsJson = () =>
  transcript(
    'Frames that make createWsServer close the socket (1007 tinybase:14 invalid, 1013 tinybase:15 over a ' +
      'limit), and frames it accepts or drops silently.',
    (wss) => createWsServer(wss),
    async (network) => {
      for (const [name, frame, {protocol, binary} = {}] of ERROR_FRAMES) {
        network.step(name);
        const conn = await network.open(name, '/errors', {protocol, gated: false});
        await network.settle();
        network.write(conn, frame, binary);
        await network.settle();
        if (conn.server.readyState == conn.server.OPEN) await network.close(conn);
      }
      return null;
    },
  );
