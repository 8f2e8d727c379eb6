// stores.json, merges.json and apply.json: real MergeableStores driven by Store operations on a
// fixed clock. What a synchronizer would send and a persister would save is read through the
// store's internal `__` functions, exactly as TinyBase's synchronizers and persisters read it:
// `__[1]()` the encoded content, `__[2](withHashes)` the encoded changes of the transaction,
// `__[3]` / `__[4]` the encoded content load and changes merge.
import {createMergeableStore} from 'tinybase/mergeable-store';
import {overTheWire} from './write.mjs';

export const T0 = 1_700_000_000_000;

/** Runs one operation: `[method, ...args]`, or `['transaction', [op, …]]`. */
export const runOp = (store, [method, ...args]) =>
  method == 'transaction' ? store.transaction(() => args[0].forEach((op) => runOp(store, op))) : store[method](...args);

/** A store whose clock reads `clock.now`. */
export const newStore = (uniqueId, clock) => createMergeableStore(uniqueId, () => clock.now);

/** Builds a store from `{now, op}` steps. */
export const build = (uniqueId, steps, clock = {now: T0}) => {
  const store = newStore(uniqueId, clock);
  for (const {now, op} of steps) {
    clock.now = now;
    runOp(store, op);
  }
  return store;
};

/** The encoded changes of every transaction `action` runs on `store` (null when none ran). */
export const recordTransaction = (store, action) => {
  let changes = null;
  const id = store.addDidFinishTransactionListener(() => {
    changes = {changes: overTheWire(store.__[2](false)), changesWithHashes: overTheWire(store.__[2](true))};
  });
  action();
  store.delListener(id);
  return changes;
};

// Every hash tree of the store: the API's row and cell hashes list every child of a table or row
// whose hash differs from the given one, and -1 differs from every hash.
export const snapshot = (store) => {
  const tableHashes = store.getMergeableTableHashes();
  const rowHashes = store.getMergeableRowHashes(Object.fromEntries(Object.keys(tableHashes).map((id) => [id, -1])));
  const differingRows = Object.fromEntries(
    Object.entries(rowHashes).map(([tableId, rows]) => [
      tableId,
      Object.fromEntries(Object.keys(rows).map((rowId) => [rowId, -1])),
    ]),
  );
  return overTheWire({
    encodedContent: store.__[1](),
    content: store.getMergeableContent(),
    contentHashes: store.getMergeableContentHashes(),
    tableHashes,
    rowHashes,
    cellHashes: store.getMergeableCellHashes(differingRows),
    valueHashes: store.getMergeableValueHashes(),
    tables: store.getTables(),
    values: store.getValues(),
  });
};

const STORE_SCENARIOS = [
  {
    name: 'basic',
    about: 'cell and value writes and deletes, row and table operations, JSON cells, a transaction',
    uniqueId: 'ada',
    steps: [
      [0, ['setCell', 'todos', 't1', 'title', 'milk']],
      [0, ['setValue', 'theme', 'dark']],
      [1, ['setRow', 'todos', 't2', {title: 'eggs', done: false}]],
      [1, ['setCell', 'todos', 't1', 'done', true]],
      [2, ['delCell', 'todos', 't1', 'title']],
      [2, ['setValues', {theme: 'light', count: 2}]],
      [3, ['delValue', 'theme']],
      [3, ['setCell', 'todos', 't1', 'meta', {tags: ['a', 'b'], n: 1}]],
      [3, ['setCell', 'todos', 't1', 'list', [1, 'x', null]]],
      [4, ['setCell', 'todos', 't1', 'note', null]],
      [4, ['setPartialRow', 'todos', 't2', {done: true, who: 'ben'}]],
      [5, ['setRow', 'todos', 't2', {title: 'bread'}]],
      [5, ['delRow', 'todos', 't2']],
      [6, ['transaction', [['setCell', 'todos', 't3', 'title', 'jam'], ['setValue', 'count', 3], ['delCell', 'todos', 't1', 'note']]]],
      [7, ['setTable', 'people', {p1: {name: 'Ann'}, p2: {name: 'Bo'}}]],
      [8, ['setPartialValues', {count: 4, flag: false}]],
      [9, ['delTable', 'people']],
      [10, ['setCell', 'todos', 't1', 'title', 'oats']],
      [10, ['setCell', 'todos', 't1', 'title', 'oats']],
      [11, ['delValues']],
      [12, ['setTables', {todos: {t1: {title: 'tea'}}, more: {m: {x: 1}}}]],
      [13, ['delTables']],
    ],
  },
  {
    name: 'key-order',
    about: 'JSON key order: integer-like ids first in ascending order, then the others in insertion order',
    uniqueId: 'ben',
    steps: [
      ...['z', '10', 'a', '2', '-1', '01', '4294967295', '4294967294', '1.5', '', '0', ' 1'].map((rowId, i) => [
        i,
        ['setCell', 'rows', rowId, 'c', i],
      ]),
      [20, ['setValues', {b: 1, 7: 2, a: 3, 3: 4}]],
      [21, ['setRow', 'rows', 'z', {9: 1, y: 2, 1: 3}]],
    ],
  },
  {
    name: 'ids',
    about: 'ids with quotes, backslashes, newlines, colons, non-ASCII and astral characters',
    uniqueId: 'ü',
    steps: [
      [0, ['setCell', 'grüße', 'quote"d', 'new\nline', 'x']],
      [0, ['setCell', 'grüße', 'quote"d', '😀', 'y']],
      [0, ['setValue', 'back\\slash', '日本']],
      [0, ['setCell', 't', 'r', 'a:b', 1]],
      [1, ['setCell', 't', 'r:0', 'c', 2]],
      [1, ['setValue', '', 'empty id']],
    ],
  },
  {
    name: 'numbers',
    about: 'number cells: their hashes depend on JavaScript number formatting',
    uniqueId: 'cy',
    steps: [
      [0, ['setRow', 'n', 'r', {zero: 0, negZero: -0, int: 42, frac: 1.5, tenth: 0.1, sum: 0.1 + 0.2, third: 1 / 3}]],
      [1, ['setRow', 'n', 's', {e20: 1e20, e21: 1e21, small: 1e-7, micro: 1e-6, big: 2 ** 53 + 2, tiny: 5e-324}]],
      [2, ['setValues', {max: Number.MAX_VALUE, neg: -1e300, safe: Number.MAX_SAFE_INTEGER}]],
      [3, ['setCell', 'n', 'r', 'int', 43]],
    ],
  },
  {
    name: 'clock',
    about: 'HLCs of local writes when the clock stands still, goes back and jumps ahead',
    uniqueId: 'dee',
    steps: [
      [10, ['setCell', 't', 'r', 'a', 1]],
      [10, ['setCell', 't', 'r', 'a', 2]],
      [10, ['setCell', 't', 'r', 'b', 1]],
      [4, ['setCell', 't', 'r', 'c', 3]],
      [4, ['setValue', 'v', 1]],
      [30, ['setCell', 't', 'r', 'd', 4]],
      [30, ['setRow', 't', 'r2', {x: 1, y: 2, z: 3}]],
      [100_000, ['delCell', 't', 'r', 'a']],
    ],
  },
];

export const storesJson = () => ({
  about:
    'Each scenario runs Store operations on one store with a fixed clock (now, ms). Per step: changes = the ' +
    'ContentDiff body a WsSynchronizer would broadcast for that transaction; changesWithHashes = what a ' +
    'persister would save; contentHashes after it. At the end: the encoded (wire and persisted) and API ' +
    'content, every hash tree, the tables and the values.',
  scenarios: STORE_SCENARIOS.map(({name, about, uniqueId, steps}) => {
    const clock = {now: T0};
    const store = newStore(uniqueId, clock);
    return {
      name,
      about,
      uniqueId,
      steps: steps.map(([offset, op]) => {
        clock.now = T0 + offset;
        const recorded = recordTransaction(store, () => runOp(store, op));
        if (!recorded) throw new Error(`stores.json: ${name}: ${op[0]} ran no transaction`);
        return {now: clock.now, op, ...recorded, contentHashes: store.getMergeableContentHashes()};
      }),
      final: snapshot(store),
    };
  }),
});

const steps = (list) => list.map(([offset, op]) => ({now: T0 + offset, op}));

const MERGE_PAIRS = [
  {
    name: 'the later logical time wins',
    a: [[0, ['setCell', 't', 'r', 'c', 'ada, earlier']]],
    b: [[1, ['setCell', 't', 'r', 'c', 'ben, later']]],
  },
  {
    name: 'the same millisecond: the higher counter wins',
    a: [[0, ['setCell', 't', 'r', 'other', 1]], [0, ['setCell', 't', 'r', 'c', 'ada, counter 1']]],
    b: [[0, ['setCell', 't', 'r', 'c', 'ben, counter 0']]],
  },
  {
    name: 'the same millisecond and counter: the larger client id wins',
    a: [[0, ['setCell', 't', 'r', 'c', 'ada']], [0, ['setValue', 'v', 'ada']]],
    b: [[0, ['setCell', 't', 'r', 'c', 'ben']], [0, ['setValue', 'v', 'ben']]],
  },
  {
    name: 'deletes against updates, in both directions',
    a: [[0, ['setRow', 't', 'r', {c: 1, d: 1}]], [2, ['delCell', 't', 'r', 'c']], [2, ['setCell', 't', 'r', 'd', 2]]],
    b: [[1, ['setRow', 't', 'r', {c: 9, d: 9}]], [3, ['delCell', 't', 'r', 'd']]],
  },
  {
    name: 'values, a deleted row, a JSON cell and disjoint tables',
    a: [
      [0, ['setValues', {open: true, n: 1}]],
      [0, ['setRow', 'pets', 'fido', {legs: 4, info: {age: 3}}]],
      [4, ['delRow', 'pets', 'fido']],
      [4, ['setCell', 'onlyA', 'r', 'c', 'a']],
    ],
    b: [
      [1, ['setValues', {open: false}]],
      [2, ['setCell', 'pets', 'fido', 'color', 'brown']],
      [5, ['setCell', 'onlyB', 'r', 'c', 'b']],
    ],
  },
];

export const mergesJson = () => ({
  about:
    "A.merge(B): each store applies the other's whole content as changes. acceptedByA and acceptedByB are " +
    'the changes with hashes of those two transactions; afterwards both stores hold the same content.',
  pairs: MERGE_PAIRS.map(({name, a: aSteps, b: bSteps}) => {
    const a = build('ada', steps(aSteps));
    const b = build('ben', steps(bSteps));
    const before = {a: overTheWire(a.__[1]()), b: overTheWire(b.__[1]())};
    let acceptedByB = null;
    const acceptedByA = recordTransaction(a, () => {
      acceptedByB = recordTransaction(b, () => a.merge(b));
    });
    return {
      name,
      a: {uniqueId: 'ada', steps: steps(aSteps)},
      b: {uniqueId: 'ben', steps: steps(bSteps)},
      before,
      acceptedByA: acceptedByA.changesWithHashes,
      acceptedByB: acceptedByB.changesWithHashes,
      after: {a: snapshot(a), b: snapshot(b)},
    };
  }),
});
