// The scenarios run through the reference by gen.mjs: a PUT body, then websocket frames (prefix "").
const M = '\uFFFC';
const s = (tables, values, flag = 1) => 's' + JSON.stringify([tables, values, flag]);
const odd = ['', '"', '\\', '","', 'a","b', '\n', '\t', '\u0000', '\u001f', 'é', '日本', '😀', '\u2028', M, '\uFFFD', '/', '%41',
  'hasStore', 't', 'v', '__proto__', 'constructor', 'toString', '0', '9', '10', '01', '-1', '4294967294', '4294967295', 'a b', 'a!', 'a', 'b', 'ab', 'a,', '\u007f'];
const oddTables = Object.fromEntries(odd.map((id, i) => [id, {[id]: {[id]: i}}]));
const oddValues = Object.fromEntries(odd.map((id, i) => [id, i]));
const scenarios = [
  {put: '[{},{}]', frames: ['s[{},{},1]', 's[{"t":{}},{},1]', 's[{"t":{"r":{}}},{},1]', 's[{},{"v":1},1]']},
  {put: '[{"t":{}},{}]', frames: ['s[{},{"v":1},1]']},
  {put: '[{"t":{"r":{}}},{}]'},
  {put: '[{"t":{},"w":{"r":{"c":1},"s":{}}},{"v":1}]'},
  {put: '[{"b":{"y":{"z":1,"a":2}},"a":{"x":{"c":3}}},{"v2":true,"v1":"s"}]'},
  {put: JSON.stringify([oddTables, oddValues])},
  {put: '[{},{}]', frames: odd.map((id) => s({[id]: {[id]: {[id]: 1}}}, {[id]: 2}))},
  {put: JSON.stringify([oddTables, oddValues]), frames: [s(Object.fromEntries(odd.filter((_, i) => i % 2).map((id) => [id, M])), Object.fromEntries(odd.filter((_, i) => i % 3).map((id) => [id, M])))]},
  {put: '[{"a":{"r":{"c":1}},"ab":{"r":{"c":2}},"a\\"":{"r":{"c":3}},"a\\\\":{"r":{"c":4}},"a,":{"r":{"c":5}},"a\\",\\"b":{"r":{"c":6}},"t":{"r":{"c":6},"rr":{"c":7},"r\\"":{"c":8},"r\\",\\"c":{"c":9}}},{}]',
    frames: [`s[{"a":"${M}","t":{"r":"${M}"}},{},1]`]},
  {put: '[{"t":{"r":{"s":"x","n":-2.5,"z":-0,"b":false,"nul":null,"a":[1,"two",null,[true],1e400],"o":{"k":{"x":1e400}},"m":"\uFFFC","e":"\uFFFD[1,2]"}}},{"big":1E21}]'},
  {put: '[{},{}]', frames: [
    's [{},{"n":-0,"e":1E21,"f":5.000,"i":9007199254740993,"j":123456789012345678901,"u":1e-400,"w":1.5e-7,"x":0.000001,"y":5e-324,"z":1.7976931348623157e+308},1] ',
    `s\n[{"t":{"r":{"a":["${M}",1],"o":{"k":"${M}","j":2},"d":{"deep":{"er":1}}}}},{"v":[1e400],"o":{"x":1e400}},1]\r\n`,
    's[{},{"v":1e400},1]', 's[{},{"v":NaN},1]', `s[{},{"v":"${M}x"},1]`,
  ]},
  {put: '[{"t":{"r":{"c":0}}},{"v":0}]', frames: [
    '', 's', 'hello', 'x[{},{"v":1},1]', 'S[{},{"v":1},1]', ' s[{},{"v":1},1]', 's{"bad":1}', 's[{},{"v":1}]', 's[{},{"v":1},2]',
    's[{},{"v":1},0]', 's[{},{"v":1},null]', 's[{},{"v":1},1,1]', 's[{"t":{"r":{"c":1}}},{},1]trailing', 's[{"t":{"r":{"c":1}}},{},1',
    's[{"t":[1]},{},1]', 's[{"t":{"r":5}},{},1]', 's[{"t":{"r":{"c":1}}},[],1]', 's[[],{},1]', 's[null,{},1]', 'snull', 's"text"', 's12', 'strue',
    'tb:s[{},{"v":1},1]', 's[{},{},-1]', 's[{},{},false]', 's[{},{},{}]', 's[{},{},"x"]', 's[{},{},[1,1]]', `s[{},{},"${M}"]`, `s["${M}",{},1]`,
    `s[{},"${M}",1]`, 's[{"t":null},{},1]', 's[{"t":true},{},1]', 's[{"t":{"r":"x"}},{},1]', 's[{"t":{"r":[]}},{},1]', 's[{"t":{"r":null}},{},1]',
    's\u00a0[{},{"v":1},1]', '\ufeffs[{},{"v":1},1]', 's[{},{"v":1},1]\u00a0',
  ]},
  {put: '[{},{}]', frames: ['1', '"1"', '" 1 "', '"01"', '"+1"', '"1e0"', '"0x1"', '"\\t1\\n"', '[1]', '["1"]', '[[1]]', 'true', '1.0', '1e0', '10e-1',
    '"\u00851"', '"\ufeff1"', '"\u30001"', '"1."', '".1e1"', '"0b1"', '"0o1"', '"0X01"', '"-0x1"', '"0x"', '[null]', `["${M}"]`, '[true]', '""', '[]', '[{}]', '"Infinity"', '1e400']
    .map((flag, i) => `s[{},{"f${i}":${i}},${flag}]`)},
  {put: '[{"t":{"r":{"c":1,"d":2},"s":{"c":3}},"u":{"r":{"c":4}}},{"v":1}]', frames: [
    `s[{"t":"${M}"},{},1]`, 's[{"t":{"r":{"n":5}}},{},1]', `s[{"u":"${M}","w":{"r":{"c":6}}},{},1]`,
    `s[{"t":{"r":{"n":"${M}"}}},{},1]`, `s[{"w":{"r":{"c":"${M}"}}},{"v":"${M}"},1]`, `s[{"ghost":"${M}","g2":{"r":"${M}","s":{"c":"${M}"}}},{"ghost":"${M}"},1]`,
    's[{"e":{},"t2":{"empty":{},"r":{"c":1}}},{"v":2},1]', 's[{"t2":{"r":{"c":1}}},{},1]', 's[{"t2":{"r":{"c":1}}},{},1]',
    `s[{"t2":{"r":{"c":"${M}","c":7},"r":{"d":8}}},{"x":1,"x":"${M}"},1]`,
  ]},
  {put: '[{"b":{"2":{"y":1,"1":2}},"10":{"x":{"c":3}},"9":{"x":{"c":4}}},{"b":1,"10":2,"":3,"01":4}]',
    frames: ['s[{"b":{"2":{"0":5}},"4294967295":{"r":{"c":1}}},{"4294967294":1},1]']},
  {put: '[{"t":{"r":{"c":{"b":1,"a":2,"1":3,"__proto__":4}}}},{"v":["\\u0000\\b\\f\\n\\r\\t\\"\\\\\\/\u007f\u2028\u2029\ud83d\ude00",{"2":1,"1":2}]}]'},
];
const bad = ['', 'not json', '[{},{}', '[{},{}] x', 'null', '{}', '[]', '[{}]', '[{},{},1]', '[{},{},{}]', '[[],{}]', '[{},[]]', '[null,{}]',
  '[{},null]', '["x",{}]', '[{"t":null},{}]', '[{"t":"x"},{}]', `[{"t":"${M}"},{}]`, `[{"t":{"r":"${M}"}},{}]`, '[{"t":[]},{}]', '[{"t":{"r":null}},{}]',
  '[{"t":{"r":1}},{}]', '[{"t":{"r":[1]}},{}]', '[{"t":{"r":{"c":1e400}}},{}]', '[{},{"v":-1e400}]', '[{"t":{"r":{"c":NaN}}},{}]',
  '[{"t":{"r":{"c":undefined}}},{}]', "[{'t':{}},{}]", '[{"t":{"r":{"c":1}}},{},]', '\uFEFF[{},{}]', '[{},{}]\u00a0', '[{},{}]//'];
for (const put of bad) scenarios.push({put});
// JSON that JavaScript takes though a Rust string cannot hold it: lone UTF-16 surrogates (what a
// client's setCell('t', 'r', 'c', 'x\ud83d') sends, JSON.stringify writing them as \udxxx escapes),
// as ids, values, object keys and array items. U+FDD0 and U+E000 are in the list because partyd
// holds lone surrogates with their help; they must stay plain characters. Value ids are chosen so
// that no two read the same with U+FFFD in place of their lone surrogates: the storage stand-in
// lists keys by UTF-8 bytes, where such ids tie and only insertion order separates them.
const lone = ['\ud800', '\udbff', '\udc00', '\udfff', 'x\ud83d', '\ude00x', '\ude00\ud83d', '\ud83d\ud83d\ude00', 'a\ud800b\udc00', '\ufdd0', '\ufdd0\ue000', '\ue000', '\ufdd0\ud800', '\ufdd0\ufdd0'];
const loneValueIds = ['\ud800', 'x\ud83d', '\ude00x', '\ude00\ud83d', '\ud83d\ud83d\ude00', 'a\ud800b\udc00', '\ufdd0\ud800', '\ufdd0', '\ue000'];
scenarios.push(
  {put: JSON.stringify([Object.fromEntries(lone.map((id) => [id, {[id]: {[id]: id, [`${id}[]`]: [id, {[id]: id}]}}])), Object.fromEntries(loneValueIds.map((id) => [id, id]))])},
  {put: '[{},{"v":"\\ud800"}]'},
  {put: '[{"t":{"r":{"c":"x"}}},{}]', frames: [
    s({t: {r: {c: 'x\ud83d'}}}, {v: '\ud800'}),
    s({'\ud800': {'\udc00': {'\udfff': ['\ud800', {'\udbff': '\ude00'}], ok: 1}}}, {'\ud800': ['x\ud83d']}),
    's[{},{"p":"\\ud83d\\ude00","q":"\\uD83D\\uDE00","r":"\\ud83d\\u0041","s":"\\ude00\\ud83d","u":"\\ud83d\\ud83d\\ude00"},1]',
    's[{"t":{"r":{"c":"\\ud800","c":"\\udc00","d":{"\\ud800":1,"\\ud800":2}}}},{"\\ud800":"\\ud800","\\ud800":"\\udbff"},1]',
    s({'\ud800': {'\udc00': {'\udfff': M}}}, {'\ud800': M}),
    s({'\ud800': M}, {'x\ud83d': 1}),
  ]},
  // Odd but legal JSON: escaped NUL and line separators, numbers at the edges of doubles, -0,
  // repeated keys (the last wins, at the first one's place; a repeated row replaces the whole row),
  // escaped keys that repeat plain ones, an escaped marker, and nesting deep but within limits.
  {put: '[{"t":{"r":{"n":"\\u0000","l":"\\u2028\\u2029","z":-0,"big":1.7976931348623157e308,"tiny":5e-324,"neg":-1.5e-7,"k":{"\\u0000":1,"\\u2028":-0}}}},{"\\u0000":1,"\\u2028":2}]'},
  {put: '[{"t":{"r":{"c":1,"c":2,"d":0},"r":{"d":3},"\\u0072":{"e":4}},"\\u0074":{"s":{"c":5}}},{"v":1,"\\u0076":2,"v":3}]', frames: [
    's[{"t":{"r":{"c":1,"\\u0063":-0}},"t":{"s":{"c":6}}},{"v":-0,"\\u0076":1e-7},1]',
    's[{},{"v":"\\ufffc","w":"\\uFFFC","x":["\\ufffc"]},1]',
    `s[{"t":{"r":{"deep":${'['.repeat(500)}${']'.repeat(500)},"obj":${'{"a":'.repeat(400)}1${'}'.repeat(400)}}}},{},1]`,
  ]},
);
console.log(JSON.stringify(scenarios));
