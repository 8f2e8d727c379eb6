// apply.json: changes applied to one base store through the path a synchronizer uses (the wire
// decoding, then `__[4]`, applyEncodedMergeableChanges), and content loaded through the path a
// persister uses (`__[3]`, setEncodedMergeableContent).
import {getHlcFunctions} from 'tinybase/common';
import {T0, build, newStore, recordTransaction} from './stores.mjs';
import {overTheWire} from './write.mjs';

const U = undefined;
const [, , encodeHlc] = getHlcFunctions('ben');
const ben = (offset, counter = 0) => encodeHlc(T0 + offset, counter);
const FIVE_MINUTES = 300_000;

const BASE_STEPS = [
  {now: T0, op: ['setCell', 't', 'r', 'c', 'base']},
  {now: T0, op: ['setCell', 't', 'r', 'd', 1]},
  {now: T0, op: ['setValue', 'v', 'base']},
];

const cell = (table, row, id, stamp, valueStamps = {}) => [[{[table]: [{[row]: [{[id]: stamp}]}]}], [valueStamps], 1];

// A case's name says "reject" exactly when TinyBase ignored the whole message (no transaction ran);
// the generator checks that, and partyd's test expects an error for exactly those.
const CASES = [
  ['a newer cell is accepted', cell('t', 'r', 'c', ['newer', ben(1)])],
  ['an older cell is ignored', cell('t', 'r', 'c', ['older', ben(-1)])],
  ['an equal HLC is ignored (a newer one must be strictly greater)', cell('t', 'r', 'c', ['same', encodeHlc(T0, 0, 'server')])],
  ['a newer deletion of an existing cell', cell('t', 'r', 'c', [U, ben(1)])],
  ['a deletion of an unknown cell leaves a tombstone', cell('t', 'r', 'gone', [U, ben(1)])],
  ['a new value and a new table', [[{u: [{r2: [{x: [1, ben(1)]}]}]}], [{w: [true, ben(1, 1)]}], 1]],
  ['a newer value and a deleted value', [[{}], [{v: ['newer', ben(2)], gone: [U, ben(2, 1)]}], 1]],
  ['null, an array and a number cell', [[{t: [{r: [{c: [null, ben(1)], d: [[1, [2]], ben(1, 1)], e: [-2.5e-9, ben(1, 2)]}]}]}], [{}], 1]],
  ['an HLC exactly 5 minutes ahead of now is accepted', cell('t', 'r', 'c', ['future', ben(FIVE_MINUTES)])],
  [
    'one HLC more than 5 minutes ahead rejects the whole message',
    [[{t: [{r: [{c: ['fine', ben(1)], d: ['too far', ben(FIVE_MINUTES + 1)]}]}]}], [{}], 1],
  ],
  ['a value HLC too far ahead rejects the tables too', cell('t', 'r', 'c', ['fine', ben(1)], {v: ['far', ben(FIVE_MINUTES + 60_000)]})],
  ['a malformed HLC rejects the whole message', cell('t', 'r', 'c', ['bad', ben(1).slice(0, 15)])],
  ['an HLC with a character outside the alphabet rejects the whole message', cell('t', 'r', 'c', ['bad', ben(1).slice(0, 15) + '.'])],
  ['a stamp without HLC is accepted only where the cell is new', cell('t', 'r', 'c', ['no hlc'], {fresh: ['no hlc']})],
  [
    'stamps carrying hashes (API only; the wire forbids them): the hashes are recomputed',
    [[{t: [{r: [{c: ['hashed', ben(1), 12345]}, '', 888]}, '', 999]}, '', 777], [{}, '', 0], 1],
  ],
  ['a row stamp with its own HLC: the row time is set and folded into its hash', [[{t: [{r: [{c: ['x', ben(1)]}, ben(2)]}]}], [{}], 1]],
  [
    'table, tables and values stamps with their own HLCs',
    [[{t: [{r: [{c: ['y', ben(1)]}]}, ben(3)]}, ben(4)], [{v: ['z', ben(1)]}, ben(5)], 1],
  ],
  ['an empty row and an empty table create empty containers', [[{t: [{empty: [{}]}], bare: [{}]}], [{}], 1]],
  ['two-element changes (no trailing 1) are accepted by the API', [[{t: [{r: [{c: ['two', ben(1)]}]}]}], [{}]]],
  ['a trailing element other than 1 is rejected', [[{t: [{r: [{c: ['three', ben(1)]}]}]}], [{}], 2]],
  ['a U+FFFD string (an encoded object) is stored as sent', cell('t', 'r', 'c', ['\uFFFD{"a":1}', ben(1)])],
  ['a raw object cell (not U+FFFD-encoded) is stored raw', cell('t', 'r', 'c', [{a: 1}, ben(1)])],
  ['a stamp of four elements is rejected', cell('t', 'r', 'c', ['x', ben(1), 0, 0])],
  ['a stamp hash that is not a number is rejected', cell('t', 'r', 'c', ['x', ben(1), 'hash'])],
  ['a table stamp that is not an array is rejected', [[{t: {r: [{c: ['x', ben(1)]}]}}], [{}], 1]],
  ['a values stamp that is not an array is rejected', [[{}], {v: ['x', ben(1)]}, 1]],
];

// The HLC the store would give its next local write at T0: how far its clock has moved.
const nextHlc = (store) => {
  store.setValue('\u0000probe', 1);
  return store.__[1]()[1][0]['\u0000probe'][1];
};

export const applyJson = () => {
  const clock = {now: T0};
  const base = () => build('server', BASE_STEPS, clock);
  return {
    about:
      'Each case starts from the same base store (uniqueId "server", clock at T0) and applies `changes` as a ' +
      'synchronizer does (the wire decoding turns "\\uFFFC" into undefined, then applyEncodedMergeableChanges) ' +
      'with now = T0. accepted = the changes with hashes of the transaction (null: the whole message was ' +
      'rejected and no transaction ran); contentAfter = the encoded content; nextHlc = the HLC of the next ' +
      'local write at T0, which shows how far the clock moved.',
    base: {uniqueId: 'server', steps: BASE_STEPS, content: overTheWire(base().__[1]())},
    now: T0,
    cases: CASES.map(([name, changes]) => {
      const store = base();
      const recorded = recordTransaction(store, () => store.__[4](overTheWire(changes)));
      if (name.includes('reject') != (recorded === null)) {
        throw new Error(`apply.json: "${name}" was ${recorded ? 'accepted' : 'rejected'}`);
      }
      const contentAfter = overTheWire(store.__[1]());
      return {name, changes, accepted: recorded?.changesWithHashes ?? null, contentAfter, nextHlc: nextHlc(store)};
    }),
    setContent: {
      about: 'Loading whole content (setEncodedMergeableContent, as a persister loads) keeps the given hashes, right or wrong.',
      cases: [
        base().__[1](),
        [[{t: [{r: [{c: ['x', ben(0), 1]}, '', 2]}, '', 3]}, '', 4], [{v: [true, ben(0, 1), 5]}, '', 6]],
        [[{t: [{r: [{c: [U, ben(0), 0]}, ben(1), 7]}, '', 0]}, ben(2), 0], [{}, '', 0]],
      ].map((input) => {
        const store = newStore('loader', {now: T0});
        store.__[3](overTheWire(input));
        return {input: overTheWire(input), contentHashes: store.getMergeableContentHashes(), contentAfter: overTheWire(store.__[1]())};
      }),
    },
  };
};
