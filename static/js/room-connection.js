// The debate room's connection to the server (debates/consumers.py), without the page: it keeps
// the number of the last event applied, ignores repeats, asks for a resync on a gap, reconnects
// with backoff and re-sends every action (each with its own client_id) until the server
// acknowledges it. The page gives it a way to open a socket and callbacks; tests under Node give
// it fake sockets and a fake clock (tests/test_room_connection_js.py).

export const PING_EVERY_MS = 10000;
export const SILENCE_LIMIT_MS = 50000;
export const MAX_BACKOFF_MS = 15000;
const OPEN = 1; // WebSocket.OPEN, which Node has not everywhere
const NO_ACCESS = 4403; // the server's close code for a viewer who may not see the debate

// Backoff before reconnect attempt number `attempts` (0 first), with jitter from `random` in [0, 1).
export function backoffDelay(attempts, random) {
  return Math.min(MAX_BACKOFF_MS, 500 * 2 ** attempts) * (0.75 + random / 2);
}

export function newClientId() {
  if (crypto.randomUUID) return crypto.randomUUID();
  // Plain-HTTP pages on another host have no randomUUID.
  return Array.from(crypto.getRandomValues(new Uint8Array(16)), (b) => b.toString(16).padStart(2, "0")).join("");
}

const realClock = {
  now: () => Date.now(),
  random: () => Math.random(),
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (id) => clearTimeout(id),
  setInterval: (fn, ms) => setInterval(fn, ms),
};

// openSocket(): a new WebSocket (or anything with addEventListener, send, close and readyState).
// seq: the number of the last event in the state the page starts from.
// Callbacks, all optional:
//   onState(frame)             a full state: the page replaces its own
//   onEvent(frame)             the next event, in order, once (even if the callback throws)
//   onAck(message)             the server acted on a message sent with send()
//   onRefused(frame, message)  an error frame; message is the sent one it concerns, or null
//   onFrame(frame)             every other frame (presence, AI progress, ...)
//   onStatus(kind, detail)     kind: "connecting" ({attempts}), "retrying" ({delayMs}), "open", "closed"
//   onNoAccess()               the server closed for good: this viewer may not see the debate
export class RoomConnection {
  constructor({ openSocket, seq, clock = realClock, newId = newClientId, ...callbacks }) {
    this.openSocket = openSocket;
    this.clock = clock;
    this.newId = newId;
    this.on = callbacks;
    this.lastSeq = seq;
    this.socket = null;
    this.attempts = 0;
    this.reconnectTimer = null;
    this.syncRequested = false;
    this.lastHeard = clock.now();
    this.gaveUp = false;
    this.pending = new Map(); // client_id -> message not yet acknowledged
  }

  // Connects, and from then on pings the server and drops a connection that has gone silent.
  start() {
    this.clock.setInterval(() => this.keepAlive(), PING_EVERY_MS);
    this.connect();
  }

  // Sends an action until the server acknowledges it; returns its client_id.
  send(message) {
    message.client_id = this.newId();
    this.pending.set(message.client_id, message);
    this.transmit(message);
    return message.client_id;
  }

  isPending(type) {
    return Array.from(this.pending.values()).some((m) => m.type === type);
  }

  isOpen() {
    return this.socket !== null && this.socket.readyState === OPEN;
  }

  // The network is back or the page is in view again: try now rather than after the backoff.
  reconnectNow() {
    if (this.socket && this.socket.readyState <= OPEN) return;
    this.attempts = 0;
    this.connect();
  }

  connect() {
    this.clock.clearTimeout(this.reconnectTimer);
    if (this.gaveUp) return;
    this.status("connecting", { attempts: this.attempts });
    const ws = this.openSocket();
    this.socket = ws;
    // A socket that has been replaced may still report; only the current one counts.
    ws.addEventListener("open", () => {
      if (ws !== this.socket) return;
      this.lastHeard = this.clock.now();
      // The server sends the full state first; anything not yet acknowledged goes again
      // (the server recognises a repeated client_id and does not act twice).
      for (const message of this.pending.values()) ws.send(JSON.stringify(message));
    });
    ws.addEventListener("message", (event) => {
      if (ws !== this.socket) return;
      this.lastHeard = this.clock.now();
      let frame;
      try { frame = JSON.parse(event.data); } catch { return; }
      this.receive(frame);
    });
    ws.addEventListener("close", (event) => {
      if (ws !== this.socket) return;
      this.socket = null;
      if (event.code === NO_ACCESS) {
        this.gaveUp = true;
        this.status("closed", {});
        if (this.on.onNoAccess) this.on.onNoAccess();
        return;
      }
      this.scheduleReconnect();
    });
  }

  scheduleReconnect() {
    const delayMs = backoffDelay(this.attempts, this.clock.random());
    this.attempts += 1;
    this.status("retrying", { delayMs });
    this.clock.clearTimeout(this.reconnectTimer);
    this.reconnectTimer = this.clock.setTimeout(() => this.connect(), delayMs);
  }

  keepAlive() {
    if (!this.isOpen()) return;
    if (this.clock.now() - this.lastHeard > SILENCE_LIMIT_MS) { this.socket.close(); return; }
    this.transmit({ type: "ping" });
  }

  transmit(message) {
    if (this.isOpen()) this.socket.send(JSON.stringify(message));
  }

  receive(frame) {
    // Other frames carry the last sequence number the server has sent on this connection: a
    // higher one than ours means an event went missing, even when no later event follows.
    if (frame.type !== "event" && frame.type !== "state" && Number.isInteger(frame.seq) && frame.seq > this.lastSeq) {
      this.requestSync();
    }
    switch (frame.type) {
      case "state":
        this.lastSeq = frame.seq;
        this.syncRequested = false;
        this.attempts = 0;
        this.status("open", {});
        this.call("onState", frame);
        break;
      case "event":
        this.receiveEvent(frame);
        break;
      case "ack":
        this.acknowledged(frame.client_id);
        break;
      case "error":
        this.refused(frame);
        break;
      case "pong": // the debate's latest event, as the server knows it: ask for anything we lack
        if (Number.isInteger(frame.latest) && frame.latest > this.lastSeq) this.requestSync();
        break;
      default:
        this.call("onFrame", frame);
        break;
    }
  }

  receiveEvent(frame) {
    if (frame.seq <= this.lastSeq) return; // already applied
    if (frame.seq > this.lastSeq + 1) { // missed something: ask for it again, apply nothing out of order
      this.requestSync();
      return;
    }
    this.syncRequested = false;
    this.lastSeq = frame.seq; // first: a page that fails to render an event is not given it twice
    this.call("onEvent", frame);
  }

  requestSync() {
    if (this.syncRequested) return;
    this.syncRequested = true;
    this.transmit({ type: "sync", after: this.lastSeq });
  }

  acknowledged(clientId) {
    const message = this.pending.get(clientId);
    if (!message) return;
    this.pending.delete(clientId);
    this.call("onAck", message);
  }

  refused(frame) {
    const message = frame.client_id ? this.pending.get(frame.client_id) || null : null;
    if (frame.client_id) this.pending.delete(frame.client_id);
    this.call("onRefused", frame, message);
  }

  status(kind, detail) {
    this.call("onStatus", kind, detail);
  }

  call(name, ...args) {
    if (this.on[name]) this.on[name](...args);
  }
}
