// diffs.json: the pull of §3.3, run by TinyBase's own synchronizer. Each store gets a
// createCustomSynchronizer whose messages pass through JSON as on a socket; the requester is told
// the responder's content hashes (a ContentHashes message), pulls from it, and merges what it got.
// The requests, the responses and the merged changes are recorded as they crossed.
import {createCustomSynchronizer} from 'tinybase/synchronizers';
import {T0, build, recordTransaction, snapshot} from './stores.mjs';
import {decodeWire, encodeWire, overTheWire} from './write.mjs';

const NAMES = {4: 'GetTableDiff', 5: 'GetRowDiff', 6: 'GetCellDiff', 7: 'GetValueDiff'};
const TIMEOUT_SECONDS = 5;

const macrotask = () => new Promise((resolve) => setImmediate(resolve));

let inFlight = 0;

/** A synchronizer on `store` whose sends go to `route(to, requestId, message, text)`. */
const attach = (store, route) => {
  let receive;
  const synchronizer = createCustomSynchronizer(
    store,
    (to, requestId, message, body) => route(to, requestId, message, encodeWire(body)),
    (receiver) => (receive = receiver),
    () => {},
    TIMEOUT_SECONDS,
  );
  // Delivery as a socket does it: later, and decoded from the JSON text.
  const deliver = (from, requestId, message, text) => {
    inFlight++;
    setImmediate(() => {
      inFlight--;
      receive(from, requestId, message, decodeWire(text));
    });
  };
  return {synchronizer, deliver};
};

// Every message delivered and every reaction to it run: nothing in flight for a few macrotasks.
const quiet = async () => {
  for (let idle = 0; idle < 5; idle = inFlight ? 0 : idle + 1) await macrotask();
};

/** Requester A pulls from responder B, told B's hashes are `otherHashes`; returns what crossed. */
const pull = async (a, b, otherHashes = b.getMergeableContentHashes()) => {
  const exchanges = [];
  let pulling = false;
  const requester = attach(a, (to, requestId, message, text) => {
    if (!pulling) {
      // Start-up: A's broadcast GetContentHashes is answered with A's own hashes (nothing to pull),
      // and its ContentHashes broadcast goes nowhere. A is then syncing and pulls when told to.
      if (message == 1) requester.deliver('nobody', requestId, 0, JSON.stringify(a.getMergeableContentHashes()));
      return;
    }
    if (to != 'B') throw new Error(`a request to ${to}`);
    exchanges.push({message, name: NAMES[message], body: JSON.parse(text)});
    responder.deliver('A', requestId, message, text);
  });
  const responder = attach(b, (to, requestId, message, text) => {
    if (to != 'A' || message != 0) throw new Error(`B sent ${message} to ${to}`);
    exchanges.at(-1).response = JSON.parse(text);
    requester.deliver('B', requestId, message, text);
  });
  await requester.synchronizer.startSync();
  await quiet();
  pulling = true;
  let changes = null;
  let accepted = null;
  const applyChanges = a.__[4];
  a.__[4] = (received) => {
    if (changes) throw new Error('two merges in one pull');
    changes = overTheWire(received);
    let result;
    accepted = recordTransaction(a, () => (result = applyChanges(received)))?.changesWithHashes ?? null;
    return result;
  };
  requester.deliver('B', 'pull', 2, JSON.stringify(otherHashes));
  await quiet();
  if (!changes) throw new Error('the pull merged nothing: it failed or never finished');
  a.__[4] = applyChanges;
  await requester.synchronizer.destroy();
  await responder.synchronizer.destroy();
  return {otherHashes, exchanges, changes, accepted};
};

/** A store with `store`'s content, loaded as a persister loads it. */
const copy = (uniqueId, store) => {
  const loaded = build(uniqueId, [], {now: T0 + 10});
  loaded.__[3](store.__[1]());
  return loaded;
};

const steps = (list) => list.map(([offset, op]) => ({now: T0 + offset, op}));

const PAIRS = [
  {
    name: 'the requester is empty: whole tables and the values come back',
    a: [],
    b: [[0, ['setRow', 'todos', 't1', {title: 'milk', done: false}]], [0, ['setValue', 'theme', 'dark']]],
  },
  {
    name: 'the same table with different rows: a row diff',
    a: [[0, ['setRow', 'todos', 't1', {title: 'milk'}]]],
    b: [[1, ['setRow', 'todos', 't2', {title: 'eggs'}]], [1, ['setRow', 'todos', 't3', {title: 'jam'}]]],
  },
  {
    name: 'the same rows with conflicting cells: a cell diff, and the newer HLC wins',
    a: [[0, ['setRow', 'todos', 't1', {title: 'milk', done: false}]], [5, ['setCell', 'todos', 't1', 'done', true]]],
    b: [
      [1, ['setRow', 'todos', 't1', {title: 'oat milk', done: false, who: 'ben'}]],
      [2, ['delCell', 'todos', 't1', 'title']],
    ],
  },
  {
    name: 'each side has a table the other lacks, a table in common with a conflicting row, differing values',
    a: [
      [0, ['setCell', 'a', 'r', 'c', 1]],
      [0, ['setRow', 'both', 'r', {c1: 'ada', c2: 'ada'}]],
      [0, ['setValues', {x: 1, y: 2}]],
      [5, ['setCell', 'both', 'r', 'c1', 'ada, later']],
    ],
    b: [
      [1, ['setCell', 'b', 'r', 'c', 2]],
      [1, ['setRow', 'both', 'r', {c1: 'ben', c2: 'ben'}]],
      [1, ['setCell', 'both', 'r2', 'c', {k: [1]}]],
      [1, ['setValues', {y: 3, z: 4}]],
    ],
  },
  {
    name: 'identical content (B loaded a copy of A): nothing to ask',
    a: [[0, ['setCell', 'todos', 't1', 'title', 'milk']], [0, ['setValue', 'theme', 'dark']]],
    b: [],
    bCopiesA: true,
  },
];

export const diffsJson = async () => ({
  about:
    "Store A pulls from store B as a synchronizer does after B's ContentHashes, then B pulls from A (as " +
    'changed by its pull). Each exchange is a request the puller sent (message number and body) and the ' +
    "answer; changes = what the puller then merged; accepted = that merge's changes with hashes, as a " +
    'persister would save them.',
  pairs: await PAIRS.reduce(async (previous, {name, a: aSteps, b: bSteps, bCopiesA}) => {
    const pairs = await previous;
    const a = build('ada', steps(aSteps), {now: T0 + 10});
    const b = build('ben', steps(bSteps), {now: T0 + 10});
    if (bCopiesA) b.__[3](a.__[1]());
    const before = {a: snapshot(a), b: snapshot(b)};
    const aBefore = copy('ada', a);
    const aPullsB = await pull(a, b);
    const bAfter = copy('ben', b);
    const bPullsA = await pull(b, a);
    const after = {a: snapshot(a), b: snapshot(b)};
    // partyd's participant test announces A's recorded hashes to B but answers from A as it was
    // before A pulled: the data must make that pull ask the same things and end the same.
    const alone = await pull(bAfter, aBefore, bPullsA.otherHashes);
    const asked = (exchanges) => JSON.stringify(exchanges.map(({message, body}) => [message, body]));
    if (asked(alone.exchanges) != asked(bPullsA.exchanges) || JSON.stringify(snapshot(bAfter)) != JSON.stringify(after.b)) {
      throw new Error(`diffs.json: ${name}: B's pull depends on what A pulled first`);
    }
    const both = {
      a: {uniqueId: 'ada', steps: steps(aSteps)},
      b: {uniqueId: 'ben', steps: steps(bSteps), ...(bCopiesA ? {thenLoaded: "a's encoded content"} : {})},
    };
    return [...pairs, {name, ...both, before, aPullsB, bPullsA, after}];
  }, []),
});
