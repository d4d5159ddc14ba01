// A stand-in for the original JavaScript client of `web-socket-io`
// (npm `client-socket-io` 0.1.0, the one the original broadcasting demo
// imports): `libs/client-socket-io/src/index.ts` of
// nurmohammed840/web-socket-io, compiled to `dist/index.js`. Written
// afresh from reading that source, so the interop tests
// (e2e/interop.test.mjs) can drive our server the way the original client
// does, quirks included. Each part says which behaviour of the original
// it mirrors. Nothing here is used by the app.
//
// Wire format (both directions, one binary WebSocket message each):
//   Notify   01 | u8 name length | name (UTF-8) | payload
//   Request  02 | u32 id (big-endian) | u8 name length | name | payload
//   Reset    03 | u32 id
//   Response 04 | u32 id | payload

// Mirrors: `new WebSocket(url, "websocket.io-rpc-v0.1")`.
const SUBPROTOCOL = 'websocket.io-rpc-v0.1';

const NOTIFY = 1;
const REQUEST = 2;
const RESET = 3;
const RESPONSE = 4;

// Mirrors `RPCAbortError`: what `call` rejects with when its signal aborts.
// The original declares `id`, `name` and `data` as public fields, so `name`
// is the event's name (it shadows Error's `name`), and the abort reason
// becomes the message through `Error`'s constructor.
export class RPCAbortError extends Error {
  id;
  name;
  data;

  constructor(id, name, data, reason) {
    super(reason);
    this.id = id;
    this.name = name;
    this.data = data;
  }
}

// Mirrors `encodeEventName`: UTF-8, and an Error past 255 bytes (thrown
// before an id is taken, so a refused name uses no id).
function eventName(name) {
  const bytes = new TextEncoder().encode(name);
  if (bytes.byteLength > 255) {
    throw new Error(`event name too big: '${name}'`);
  }
  return bytes;
}

// Mirrors how payloads are typed: a string is sent as its UTF-8 bytes;
// anything else is taken as an array-like of numbers (Uint8Array, plain
// Array…) and copied byte by byte, each number converted as a Uint8Array
// store converts it (modulo 256).
function payloadBytes(data) {
  return typeof data == 'string' ? new TextEncoder().encode(data) : data;
}

// Mirrors `concatBytes`: one Uint8Array holding every part in order.
function joinParts(parts) {
  let total = 0;
  for (const part of parts) total += part.length;
  const out = new Uint8Array(total);
  let at = 0;
  for (const part of parts) {
    out.set(part, at);
    at += part.length;
  }
  return out;
}

export class SocketIo {
  // Mirrors the public `ws` property: the raw WebSocket.
  ws;
  // Mirrors `#next_id = 1`: request ids count from 1, one per `call`
  // (aborted calls included), never reused.
  #nextId = 1;
  // Mirrors `#rpc` and `#event`: plain objects (numeric ids become string
  // keys, which `status()` shows), one resolver per pending call and one
  // stream controller per listened event name.
  #pending = {};
  #listeners = {};

  constructor(url) {
    // Mirrors the constructor: the socket opens at once with the single
    // subprotocol and hands binary messages over as ArrayBuffers.
    this.ws = new WebSocket(url, SUBPROTOCOL);
    this.ws.binaryType = 'arraybuffer';
    this.ws.onmessage = (event) => this.#receive(event.data);
  }

  // Mirrors `ws.onmessage`. A text message is turned into an empty
  // Uint8Array by the same conversion (`new Uint8Array(string)`) and so is
  // ignored, as is every opcode but Notify and Response. A Notify goes to
  // the controller of its name, if one is registered (else it is dropped:
  // nothing is buffered for a later listener). A Response settles the call
  // of its id, if still pending, and forgets that id. Payloads are copies
  // (`slice`), names decoded leniently (TextDecoder without `fatal`).
  #receive(data) {
    const bytes = new Uint8Array(data);
    const opcode = bytes[0];
    if (opcode == NOTIFY) {
      const length = bytes[1];
      const name = new TextDecoder().decode(bytes.slice(2, 2 + length));
      const payload = bytes.slice(2 + length);
      this.#listeners[name]?.enqueue(payload);
    } else if (opcode == RESPONSE) {
      const id = new DataView(bytes.buffer).getUint32(1, false);
      const payload = bytes.slice(5);
      this.#pending[id]?.(payload);
      delete this.#pending[id];
    }
  }

  // Mirrors `status()`: ids of calls awaiting a Response (as strings) and
  // the event names that have a listener.
  status() {
    return {
      pending: Object.keys(this.#pending),
      events: Object.keys(this.#listeners),
    };
  }

  // Mirrors `removeEvent(name)`: forgets the listener (its stream is left
  // open, so a `for await` on it just never gets anything again).
  removeEvent(name) {
    return delete this.#listeners[name];
  }

  // Mirrors `on(name)`: an async generator of payloads (Uint8Array). The
  // controller is registered only when iteration starts, and only if the
  // name has none yet (`??=`): a second `on` of the same name gets nothing.
  // The stream is never closed, so the loop never ends by itself.
  async *on(name) {
    const stream = new ReadableStream({
      start: (controller) => {
        this.#listeners[name] ??= controller;
      },
    });
    const reader = stream.getReader();
    for (;;) {
      const { done, value } = await reader.read();
      if (done) return value;
      yield value;
    }
  }

  // Mirrors `connect()`: resolves at once when open; while connecting,
  // takes over `onopen`/`onclose`/`onerror` and settles on the first of
  // them (open resolves with the event, close or error rejects with it);
  // on a socket already closing or closed it resolves with nothing.
  async connect() {
    if (this.ws.readyState == this.ws.OPEN) {
      return;
    }
    if (this.ws.readyState == this.ws.CONNECTING) {
      return await new Promise((resolve, reject) => {
        this.ws.onopen = (event) => resolve(event);
        this.ws.onclose = (event) => reject(event);
        this.ws.onerror = (event) => reject(event);
      });
    }
  }

  // Mirrors `call(name, data, { signal })`: takes the next id, sends a
  // Request and resolves with the Response's payload (Uint8Array). With a
  // signal, the signal's `onabort` property (not a listener) is set before
  // the Request goes out; when it fires it sends a Reset for the id,
  // rejects with RPCAbortError(id, name, data, signal.reason) and forgets
  // the id, so a Response that still came would be ignored. A signal that
  // is already aborted does nothing (`onabort` never fires). Once the
  // Response is in, `onabort` is replaced by a no-op.
  async call(name, data, opt) {
    const nameBytes = eventName(name);
    const id = this.#nextId++;
    const idBytes = new Uint8Array(4);
    new DataView(idBytes.buffer).setUint32(0, id, false);

    const { promise, resolve, reject } = Promise.withResolvers();

    if (opt?.signal) {
      opt.signal.onabort = () => {
        this.ws.send(joinParts([[RESET], idBytes]));
        reject(new RPCAbortError(id, name, data, opt.signal?.reason));
        delete this.#pending[id];
      };
    }

    this.#pending[id] = resolve;
    this.ws.send(joinParts([
      [REQUEST],
      idBytes,
      [nameBytes.length],
      nameBytes,
      payloadBytes(data),
    ]));

    const response = await promise;
    if (opt?.signal) {
      opt.signal.onabort = () => {};
    }
    return response;
  }

  // Mirrors `notify(name, data)`: one Notify, nothing awaited.
  notify(name, data) {
    const nameBytes = eventName(name);
    this.ws.send(joinParts([
      [NOTIFY, nameBytes.length],
      nameBytes,
      payloadBytes(data),
    ]));
  }
}
