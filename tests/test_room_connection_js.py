"""The room's connection (static/js/room-connection.js) run under Node with fake sockets and a fake
clock: events applied once and in order, a gap answered by one sync, unacknowledged actions sent
again after a reconnect, the backoff, and the pong that tells a client it is behind. The server's
side of the protocol is debates/consumers.py (tested in tests/test_consumers_inprocess.py); the
browser tests drive both together."""

import json
import subprocess

from .conftest import ROOT
from .test_room_state_js import NODE, node  # noqa: F401 - the fixture skips (or fails under CI) without Node

# Sockets the test opens, receives on and drops by hand; a clock that moves only when told.
HARNESS = """
class FakeSocket {
  constructor() { this.readyState = 0; this.sent = []; this.listeners = {}; }
  addEventListener(type, listener) { (this.listeners[type] ||= []).push(listener); }
  emit(type, event) { for (const listener of this.listeners[type] || []) listener(event); }
  send(text) { this.sent.push(JSON.parse(text)); }
  open() { this.readyState = 1; this.emit("open", {}); }
  deliver(frame) { this.emit("message", { data: JSON.stringify(frame) }); }
  drop(code = 1006) { this.readyState = 3; this.emit("close", { code }); }
  close() { this.drop(1005); }
}

class FakeClock {
  constructor(random = 0.5) { this.t = 0; this.timers = []; this.nextId = 1; this.fixedRandom = random; }
  now() { return this.t; }
  random() { return this.fixedRandom; }
  setTimeout(fn, ms) { return this.add(fn, ms, null); }
  setInterval(fn, ms) { return this.add(fn, ms, ms); }
  clearTimeout(id) { this.timers = this.timers.filter((timer) => timer.id !== id); }
  add(fn, ms, every) { const id = this.nextId++; this.timers.push({ id, fn, at: this.t + ms, every }); return id; }
  advance(ms) {
    const end = this.t + ms;
    for (;;) {
      const due = this.timers.filter((timer) => timer.at <= end).sort((a, b) => a.at - b.at)[0];
      if (!due) break;
      this.t = due.at;
      if (due.every) due.at += due.every; else this.clearTimeout(due.id);
      due.fn();
    }
    this.t = end;
  }
}

// A started connection at event `seq`, recording what it hands to the page.
function room({ seq = 3, random = 0.5 } = {}) {
  const sockets = [];
  const seen = { events: [], states: [], acks: [], refused: [], frames: [], statuses: [], noAccess: 0 };
  const clock = new FakeClock(random);
  let ids = 0;
  const connection = new m.RoomConnection({
    seq, clock, newId: () => `id-${++ids}`,
    openSocket: () => { const socket = new FakeSocket(); sockets.push(socket); return socket; },
    onState: (frame) => seen.states.push(frame.seq),
    onEvent: (frame) => seen.events.push(frame.seq),
    onAck: (message) => seen.acks.push(message.client_id),
    onRefused: (frame, message) => seen.refused.push([frame.code, message && message.client_id]),
    onFrame: (frame) => seen.frames.push(frame.type),
    onStatus: (kind, detail) => seen.statuses.push([kind, detail]),
    onNoAccess: () => { seen.noAccess += 1; },
  });
  connection.start();
  const socket = () => sockets[sockets.length - 1];
  const connected = (stateSeq = seq) => { socket().open(); socket().deliver({ type: "state", seq: stateSeq }); };
  const event = (n) => socket().deliver({ type: "event", kind: "speech", seq: n, data: {} });
  const syncs = (s = socket()) => s.sent.filter((frame) => frame.type === "sync");
  return { connection, sockets, socket, seen, clock, connected, event, syncs };
}
"""


def run_js(body: str):
    """Runs `body` after the harness (it sees `m`, the module) and returns what it prints as JSON."""
    script = (
        f"const m = await import({json.dumps((ROOT / 'static/js/room-connection.js').as_uri())});\n{HARNESS}\n{body}"
    )
    done = subprocess.run([NODE, "--input-type=module", "-e", script], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_events_are_applied_in_order_and_once():
    seen = run_js("""
        const r = room({ seq: 3 });
        r.connected();
        for (const n of [4, 5, 4, 3, 6, 6, 7]) r.event(n);
        console.log(JSON.stringify({ events: r.seen.events, states: r.seen.states, syncs: r.syncs(),
                                     lastSeq: r.connection.lastSeq }));""")
    assert seen == {"events": [4, 5, 6, 7], "states": [3], "syncs": [], "lastSeq": 7}


def test_a_gap_asks_for_one_sync_and_applies_nothing_out_of_order():
    seen = run_js("""
        const r = room({ seq: 3 });
        r.connected();
        r.event(5); r.event(6);
        r.socket().deliver({ type: "presence", seats: [], seq: 6 });  // other frames say the server is ahead too
        const whileMissing = { events: [...r.seen.events], syncs: r.syncs() };
        for (const n of [4, 5, 6]) r.event(n);  // the server answers the sync
        r.event(8);  // a later gap asks again
        console.log(JSON.stringify({
          whileMissing, events: r.seen.events, syncs: r.syncs(), frames: r.seen.frames,
        }));""")
    assert seen["whileMissing"] == {"events": [], "syncs": [{"type": "sync", "after": 3}]}
    assert seen["events"] == [4, 5, 6]
    assert seen["syncs"] == [{"type": "sync", "after": 3}, {"type": "sync", "after": 6}]
    assert seen["frames"] == ["presence"]


def test_a_state_frame_replaces_the_sequence_and_ends_a_sync():
    seen = run_js("""
        const r = room({ seq: 3 });
        r.connected();
        r.event(9);
        r.socket().deliver({ type: "state", seq: 10 });
        r.event(10); r.event(11); r.event(13);
        console.log(JSON.stringify({ events: r.seen.events, states: r.seen.states, syncs: r.syncs() }));""")
    assert seen == {
        "events": [11],
        "states": [3, 10],
        "syncs": [{"type": "sync", "after": 3}, {"type": "sync", "after": 11}],
    }


def test_an_unacknowledged_speech_is_sent_again_after_a_reconnect_exactly_once():
    seen = run_js("""
        const r = room();
        r.connected();
        const id = r.connection.send({ type: "speech", text: "Mine.", private_note: "" });
        const first = r.socket();
        first.drop();
        r.clock.advance(10000);
        const second = r.socket();
        second.open();
        second.deliver({ type: "state", seq: 3 });
        const pendingBeforeAck = r.connection.isPending("speech");
        second.deliver({ type: "ack", client_id: id, turn_id: 1, seq: 3 });
        second.deliver({ type: "ack", client_id: id, turn_id: 1, seq: 3 });  // a repeat changes nothing
        second.drop();
        r.clock.advance(10000);
        r.connected();
        const speeches = (s) => s.sent.filter((frame) => frame.type === "speech").map((frame) => frame.client_id);
        console.log(JSON.stringify({ sockets: r.sockets.length, first: speeches(first), second: speeches(second),
                                     third: speeches(r.socket()), acks: r.seen.acks, pendingBeforeAck,
                                     pendingAfter: r.connection.isPending("speech") }));""")
    assert seen == {
        "sockets": 3,
        "first": ["id-1"],
        "second": ["id-1"],
        "third": [],
        "acks": ["id-1"],
        "pendingBeforeAck": True,
        "pendingAfter": False,
    }


def test_an_action_written_offline_goes_when_the_connection_opens_and_a_refusal_ends_it():
    seen = run_js("""
        const r = room();
        const id = r.connection.send({ type: "feedback", comment: "Why?" });
        const sentWhileConnecting = r.socket().sent.length;
        r.connected();
        r.socket().deliver({ type: "error", code: "not_your_turn", message: "No.", client_id: id, seq: 3 });
        r.socket().deliver({ type: "error", code: "bad_json", message: "Bad.", client_id: null, seq: 3 });
        console.log(JSON.stringify({ sentWhileConnecting, sent: r.socket().sent.map((f) => f.type),
                                     refused: r.seen.refused, pending: r.connection.isPending("feedback") }));""")
    assert seen == {
        "sentWhileConnecting": 0,
        "sent": ["feedback"],
        "refused": [["not_your_turn", "id-1"], ["bad_json", None]],
        "pending": False,
    }


def test_reconnects_back_off_up_to_a_limit_and_start_again_once_connected():
    seen = run_js("""
        const r = room({ random: 0.5 });  // no jitter: 0.75 + 0.5 / 2 = 1
        const delays = [];
        const early = [];
        for (let i = 0; i < 7; i++) {
          r.socket().drop();
          const [kind, { delayMs }] = r.seen.statuses[r.seen.statuses.length - 1];
          delays.push([kind, delayMs]);
          const count = r.sockets.length;
          r.clock.advance(delayMs - 1);
          early.push(r.sockets.length - count);
          r.clock.advance(1);
        }
        const reconnecting = r.seen.statuses[r.seen.statuses.length - 1];
        r.connected();
        r.socket().drop();
        const afterConnected = r.seen.statuses[r.seen.statuses.length - 1];
        console.log(JSON.stringify({ delays, early, sockets: r.sockets.length, reconnecting, afterConnected,
                                     jitter: [m.backoffDelay(0, 0), m.backoffDelay(0, 0.999999)] }));""")
    assert [delay for _, delay in seen["delays"]] == [500, 1000, 2000, 4000, 8000, 15000, 15000]
    assert {kind for kind, _ in seen["delays"]} == {"retrying"}
    assert seen["early"] == [0] * 7 and seen["sockets"] == 8
    assert seen["reconnecting"] == ["connecting", {"attempts": 7}]
    assert seen["afterConnected"] == ["retrying", {"delayMs": 500}]
    assert seen["jitter"][0] == 375 and 624 < seen["jitter"][1] < 625


def test_the_network_coming_back_reconnects_at_once_and_no_access_is_final():
    seen = run_js("""
        const r = room();
        r.connected();
        r.connection.reconnectNow();  // already open: nothing to do
        const whileOpen = r.sockets.length;
        r.socket().drop();
        r.clock.advance(100);
        r.connection.reconnectNow();
        const afterNow = r.sockets.length;
        r.socket().open();
        r.socket().drop(4403);
        r.clock.advance(60000);
        r.connection.reconnectNow();
        console.log(JSON.stringify({ whileOpen, afterNow, final: r.sockets.length, noAccess: r.seen.noAccess,
                                     last: r.seen.statuses[r.seen.statuses.length - 1] }));""")
    assert seen == {"whileOpen": 1, "afterNow": 2, "final": 2, "noAccess": 1, "last": ["closed", {}]}


def test_a_pong_with_a_newer_latest_event_asks_to_catch_up():
    seen = run_js("""
        const r = room({ seq: 3 });
        r.connected();
        r.socket().deliver({ type: "pong", latest: 3, seq: 3 });
        const level = r.syncs().length;
        r.socket().deliver({ type: "pong", latest: 7, seq: 3 });
        r.socket().deliver({ type: "pong", latest: 8, seq: 3 });  // the sync already asked is still awaited
        console.log(JSON.stringify({ level, syncs: r.syncs(), frames: r.seen.frames }));""")
    assert seen == {"level": 0, "syncs": [{"type": "sync", "after": 3}], "frames": []}


def test_the_connection_pings_and_drops_a_socket_that_has_gone_silent():
    seen = run_js("""
        const r = room();
        r.connected();
        r.clock.advance(30000);
        const pings = r.socket().sent.filter((frame) => frame.type === "ping").length;
        r.clock.advance(30000);  // nothing heard for 60 s
        console.log(JSON.stringify({ pings, sockets: r.sockets.length, closed: r.sockets[0].readyState,
                                     last: r.seen.statuses[r.seen.statuses.length - 1][0] }));""")
    assert seen == {"pings": 3, "sockets": 1, "closed": 3, "last": "retrying"}


def test_frames_from_a_replaced_socket_are_ignored():
    seen = run_js("""
        const r = room({ seq: 3 });
        r.connected();
        const old = r.socket();
        old.drop();
        r.clock.advance(1000);
        r.connected();
        old.deliver({ type: "event", kind: "speech", seq: 4, data: {} });
        old.emit("close", { code: 1006 });
        console.log(JSON.stringify({
          events: r.seen.events, sockets: r.sockets.length, open: r.connection.isOpen(),
        }));""")
    assert seen == {"events": [], "sockets": 2, "open": True}


def test_an_event_the_page_fails_to_show_is_not_given_again():
    seen = run_js("""
        const r = room({ seq: 3 });
        r.connection.on.onEvent = (frame) => {
          r.seen.events.push(frame.seq);
          if (frame.seq === 4) throw new Error("render failed");
        };
        r.connected();
        try { r.event(4); } catch { /* the page's error, which the browser reports */ }
        r.event(4); r.event(5);
        console.log(JSON.stringify({ events: r.seen.events, syncs: r.syncs() }));""")
    assert seen == {"events": [4, 5], "syncs": []}
