// A websocket reader that keeps reading but is slower than a flooding writer: it parses every
// message and then busy-waits a little, in a worker thread of its own (so that its slowness does
// not slow the writer, which lives on the test's main thread). Used by backpressure.test.mjs.
import {parentPort, workerData} from 'node:worker_threads';
import WebSocket from 'ws';

const {url, expected, busyMs} = workerData;
const socket = new WebSocket(url, {maxPayload: 64 * 1024 * 1024});
let received = 0;
let inOrder = true;
socket.on('open', () => parentPort.postMessage({open: true}));
socket.on('message', (data) => {
  const [, values] = JSON.parse(data.toString().slice(1));
  if (values.n !== received) inOrder = false;
  received += 1;
  const until = performance.now() + busyMs;
  while (performance.now() < until);
  if (received === expected) {
    parentPort.postMessage({received, inOrder});
    socket.close();
  }
});
socket.on('close', (code) => {
  if (received < expected) parentPort.postMessage({received, inOrder, closed: code});
});
