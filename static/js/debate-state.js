// The debate room's state: the role-filtered snapshot the server sends (debates/snapshots.py),
// advanced event by event. No DOM here, so the rules can be checked on their own.

export const ROUND_NAMES = {
  simultaneous: "Simultaneous speeches",
  sequential: "Speeches in turn",
  judge_feedback: "Judge feedback",
};

export function seatName(state, seat) {
  if (seat === "judge") return "the judge";
  const found = state.seats.find((s) => s.seat === seat);
  return found ? found.name : `Debater ${seat}`;
}

export function capitalise(text) {
  return text.charAt(0).toUpperCase() + text.slice(1);
}

function joinNames(names) {
  if (names.length <= 1) return names.join("");
  return `${names.slice(0, -1).join(", ")} and ${names[names.length - 1]}`;
}

// Apply one event frame to `state` (mutated). `own` carries what this client knows of its own
// last accepted speech ({text, private_note}), since a sealed-speech event does not repeat it.
// Returns a short sentence for screen readers, or "" when there is nothing to announce.
export function applyEvent(state, frame, own = null) {
  const data = frame.data || {};
  const at = frame.at || new Date().toISOString();
  const mine = data.seat !== undefined && data.seat === state.my_seat;
  let said = "";
  switch (frame.kind) {
    case "debate_started":
      state.status = "live";
      said = "The debate has started.";
      break;
    case "speech": {
      const turn = { round: data.round, seat: data.seat, kind: "speech", text: data.text, at };
      if (mine && own && own.private_note) turn.private_note = own.private_note;
      for (const key of ["reveal", "rectangles"]) if (data[key]) turn.payload = { ...(turn.payload || {}), [key]: data[key] };
      state.turns.push(turn);
      said = `${capitalise(seatName(state, data.seat))} said: ${truncate(data.text, 160)}`;
      break;
    }
    case "speech_sealed": {
      const turn = { round: data.round, seat: data.seat, kind: "speech", at };
      if (mine && own) {
        turn.text = own.text;
        if (own.private_note) turn.private_note = own.private_note;
      } else {
        turn.sealed = true;
      }
      state.turns.push(turn);
      said = mine ? "Your speech is in. It stays sealed until both speeches are in."
        : `${capitalise(seatName(state, data.seat))} has submitted (sealed until both are in).`;
      break;
    }
    case "speeches_revealed":
      for (const speech of data.speeches || []) {
        const turn = state.turns.find((t) => t.round === data.round && t.seat === speech.seat && t.kind === "speech");
        if (turn) {
          turn.text = speech.text;
          delete turn.sealed;
        }
      }
      said = "Both speeches are in and revealed.";
      break;
    case "feedback":
      state.turns.push({ round: data.round, seat: "judge", kind: "feedback", text: data.comment || "",
                         probabilities: data.probabilities, end_debate: !!data.end_debate, at });
      said = data.end_debate ? "The judge ended the debate." : "The judge gave feedback.";
      break;
    case "timed_out":
      state.turns.push({ round: data.round, seat: data.seat, kind: "timeout", at });
      said = `${capitalise(seatName(state, data.seat))} ran out of time.`;
      break;
    case "round_started":
      state.round = data.round;
      state.round_kind = data.kind;
      said = `Round ${data.round + 1}: ${ROUND_NAMES[data.kind] || data.kind}.`;
      break;
    case "debate_finished":
      state.status = "awaiting_verdict";
      state.round = null;
      state.round_kind = null;
      state.waiting_for = [];
      state.deadline = null;
      said = state.view === "judge" ? "The debate has ended. You can give your verdict now." : "The debate has ended.";
      break;
    case "turn_state": {
      const wasMine = state.waiting_for.includes(state.my_seat);
      state.status = data.status;
      state.round = data.round;
      state.round_kind = data.round_kind;
      state.waiting_for = data.waiting_for || [];
      state.deadline = data.deadline;
      if (!wasMine && state.my_seat && state.waiting_for.includes(state.my_seat)) said = "It is your turn.";
      break;
    }
    case "verdict_given":
      state.status = data.status || "complete";
      said = "The judge has given a verdict.";
      break;
    default: // "noop" (an event this role may not see) and kinds this page does not know yet
      break;
  }
  state.seq = frame.seq;
  return said;
}

function truncate(text, length) {
  return text.length > length ? `${text.slice(0, length - 1)}…` : text;
}

// What the turn banner says: {headline, detail, tone} with tone mine | waiting | ended | complete.
export function describeTurn(state, mayStart = false) {
  const me = state.my_seat;
  switch (state.status) {
    case "scheduled":
      return { tone: "waiting", headline: "Not started yet",
               detail: mayStart ? "Start the debate when everyone is ready."
                 : "The debate starts when a researcher opens it. This page updates by itself." };
    case "live":
      return describeLiveTurn(state, me);
    case "awaiting_verdict":
      return state.view === "judge"
        ? { tone: "ended", headline: "The debate has ended", detail: "Read the transcript again if you like, then give your verdict." }
        : { tone: "ended", headline: "The debate has ended", detail: "Waiting for the judge's verdict." };
    case "complete":
      return { tone: "complete", headline: "Debate complete",
               detail: state.view === "judge" ? "Thank you: your verdict is recorded." : "The judge has given a verdict." };
    case "abandoned":
      return { tone: "ended", headline: "This debate was abandoned", detail: "No more turns are accepted." };
    default:
      return { tone: "waiting", headline: state.status, detail: "" };
  }
}

function describeLiveTurn(state, me) {
  const waiting = state.waiting_for || [];
  const round = state.round === null || state.round === undefined ? "" : `Round ${state.round + 1} of ${state.protocol.rounds.length}`;
  const sealedNotes = sealedSpeeches(state).map((t) => t.seat === me
    ? "You have submitted; your speech stays sealed until both are in."
    : `${capitalise(seatName(state, t.seat))} has submitted (sealed until both are in).`);
  if (me && waiting.includes(me)) {
    let detail;
    if (me === "judge") detail = "How likely is each answer? Set the sliders and send your feedback.";
    else if (state.round_kind === "simultaneous") detail = "Both debaters write now; speeches stay sealed until both are in.";
    else detail = "Write your speech below.";
    return { tone: "mine", headline: "Your turn", detail: [round, detail, ...sealedNotes].filter(Boolean).join(" · ") };
  }
  const names = waiting.map((seat) => seatName(state, seat));
  const headline = names.length ? `Waiting for ${joinNames(names)}` : "Waiting";
  return { tone: "waiting", headline, detail: [round, ...sealedNotes].filter(Boolean).join(" · ") };
}

// Speeches of the current simultaneous round that are in but not yet revealed to everybody.
export function sealedSpeeches(state) {
  if (state.status !== "live" || state.round_kind !== "simultaneous") return [];
  return state.turns.filter((t) => t.round === state.round && t.kind === "speech");
}

export function isMyTurn(state) {
  return state.status === "live" && !!state.my_seat && (state.waiting_for || []).includes(state.my_seat);
}

// The judge's most recent probabilities in whole percent, or null.
export function lastFeedbackPercents(state) {
  const feedback = state.turns.filter((t) => t.kind === "feedback" && t.probabilities);
  if (!feedback.length) return null;
  const percents = feedback[feedback.length - 1].probabilities.map((p) => Math.round(p * 100));
  return percents.reduce((a, b) => a + b, 0) === 100 ? percents : null;
}
