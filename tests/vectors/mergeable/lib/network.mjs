// Real sockets between TinyBase's createWsServer and clients, recorded on the server side and made
// repeatable: clients' frames wait in one queue and the server's frames are handed to clients one
// at a time, in the order the server sent them, each only once nothing else is on the wire and
// every reaction to the previous frame has run. So the order of events never depends on timing.
// A timeout (TinyBase's requests wait 1 s) is let run out by waiting longer than it with nothing
// queued: `settle()` then `idle()` ends a step.
import {once} from 'node:events';
import {WebSocket, WebSocketServer} from 'ws';

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
const macrotask = () => new Promise((resolve) => setImmediate(resolve));

// Longer than TinyBase's 1 s request timeout, so a step ends after the timeouts it started.
const IDLE_MS = 1_400;
const CONNECTING = 0;
const OPEN = 1;
const CLOSING = 2;
const CLOSED = 3;

// What a TinyBase client is given as its WebSocket: sends go to the network's queue, and frames
// from the server arrive when the network hands them over.
class Gate extends EventTarget {
  CONNECTING = CONNECTING;
  OPEN = OPEN;
  CLOSING = CLOSING;
  CLOSED = CLOSED;
  bufferedAmount = 0;

  constructor(network, conn) {
    super();
    this.network = network;
    this.conn = conn;
    conn.client.on('close', () => this.dispatchEvent(new Event('close')));
  }

  get readyState() {
    return this.conn.client.readyState;
  }

  send(payload) {
    this.network.outbox.push({conn: this.conn, payload});
  }

  close(code, reason) {
    this.conn.client.close(code, reason);
  }
}

export class Network {
  events = [];
  outbox = [];
  held = [];
  conns = [];
  sent = 0;

  /** Starts a ws server on a free port; `attach(wss)` then puts TinyBase's server on it. */
  async start(attach) {
    this.wss = new WebSocketServer({host: '127.0.0.1', port: 0});
    await once(this.wss, 'listening');
    // Registered before TinyBase's own listener, so each frame is recorded before it is handled.
    this.wss.on('connection', (socket, request) => this.accept(socket, request));
    this.server = attach(this.wss);
  }

  event(event) {
    this.events.push(event);
  }

  step(text) {
    this.event({step: text});
  }

  accept(socket, request) {
    const conn = this.opening;
    conn.server = socket;
    const clientId = request.headers['sec-websocket-key'];
    this.event({conn: conn.name, ev: 'open', url: request.url, clientId, protocol: socket.protocol});
    const send = socket.send.bind(socket);
    socket.send = (data, ...rest) => {
      this.event({conn: conn.name, out: Buffer.from(data).toString('utf8')});
      conn.unread.push(this.sent++);
      return send(data, ...rest);
    };
    socket.on('message', (data, isBinary) => {
      conn.toServer--;
      this.event({conn: conn.name, in: data.toString('utf8'), ...(isBinary ? {binary: true} : {})});
    });
    socket.on('close', (code, reason) => this.event({conn: conn.name, ev: 'close', code, reason: reason.toString('utf8')}));
  }

  /**
   * Opens a socket named `name` on `path`; `gated` when a TinyBase client will own it. Nothing the
   * server sends is handed over before the next `settle()`, so the client can be attached first.
   */
  async open(name, path, {protocol, gated = true} = {}) {
    const conn = {name, unread: [], toServer: 0};
    this.opening = conn;
    conn.client = new WebSocket(`ws://127.0.0.1:${this.wss.address().port}${path}`, protocol ? [protocol] : []);
    conn.client.on('message', (data) => {
      const seq = conn.unread.shift();
      if (conn.gate) this.held.push({seq, conn, data: data.toString('utf8')});
    });
    if (gated) conn.gate = new Gate(this, conn);
    await once(conn.client, 'open');
    while (!conn.server) await macrotask();
    this.opening = undefined;
    this.conns.push(conn);
    return conn;
  }

  /** Sends a frame from a socket nobody else drives (a hand-made frame). */
  write(conn, payload, binary = false) {
    conn.toServer++;
    conn.client.send(binary ? Buffer.from(payload) : payload, {binary});
  }

  // Something is on the wire, or a socket is part way through its closing handshake.
  busy() {
    return this.conns.some(({client, server, toServer, unread}) => {
      const states = [client.readyState, server.readyState];
      if (states.every((state) => state == CLOSED)) return false;
      return toServer > 0 || unread.length > 0 || states.some((state) => state != OPEN);
    });
  }

  async quiet() {
    for (let calm = 0; calm < 3; ) {
      await macrotask();
      if (this.busy()) {
        calm = 0;
        await sleep(1);
      } else calm++;
    }
  }

  /** Runs the network until nothing is left to deliver or to send. */
  async settle() {
    for (;;) {
      await this.quiet();
      if (this.held.length) {
        this.held.sort((a, b) => a.seq - b.seq);
        const {conn, data} = this.held.shift();
        conn.gate.dispatchEvent(new MessageEvent('message', {data}));
      } else if (this.outbox.length) {
        const {conn, payload} = this.outbox.shift();
        this.write(conn, payload);
      } else return;
    }
  }

  /** Waits out every timeout the step started, running whatever they cause. */
  async idle() {
    for (;;) {
      const seen = this.events.length;
      await sleep(IDLE_MS);
      if (this.events.length == seen && !this.held.length && !this.outbox.length && !this.busy()) return;
      await this.settle();
    }
  }

  /** Closes a socket from the client side (1005: no status) and waits for both ends. */
  async close(conn) {
    await (conn.synchronizer ? conn.synchronizer.destroy() : conn.client.close());
    await this.settle();
  }

  /** Stops TinyBase's server, which closes the ws server and any socket still open. */
  async stop() {
    if (this.server) await this.server.destroy();
    else await new Promise((resolve) => this.wss.close(resolve));
  }
}
