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
      if (data.quotes && data.quotes.length) turn.payload = { quotes: data.quotes };
      for (const key of ["reveal", "rectangles"]) if (data[key]) turn.payload = { ...(turn.payload || {}), [key]: data[key] };
      state.turns.push(turn);
      state.quotes = quotesPanel(state.turns);
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
        let turn = state.turns.find((t) => t.round === data.round && t.seat === speech.seat && t.kind === "speech");
        if (!turn) { // the judge is not told of sealed speeches (nor when they came in), only of the reveal
          turn = { round: data.round, seat: speech.seat, kind: "speech" };
          state.turns.push(turn);
        }
        turn.text = speech.text;
        delete turn.sealed;
        if (speech.quotes && speech.quotes.length) turn.payload = { ...(turn.payload || {}), quotes: speech.quotes };
      }
      state.quotes = quotesPanel(state.turns);
      said = "Both speeches are in and revealed.";
      break;
    case "feedback":
      state.turns.push({ round: data.round, seat: "judge", kind: "feedback", text: data.comment || "",
                         probabilities: data.probabilities, end_debate: !!data.end_debate, at });
      // As the server's state does: the latest feedback's comment is what the debaters answer next.
      state.judge_question = (data.comment || "").trim() ? { round: data.round, text: data.comment } : null;
      said = data.end_debate ? "The judge ended the debate." : "The judge gave feedback.";
      if (state.judge_question && state.view !== "judge") said += ` The judge asks: ${truncate(data.comment, 160)}`;
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
    case "ai_turn_failed": // stored for viewers who may know the seat is an AI (the server hides it otherwise)
      said = `${aiSeatName(state, data.seat)} could not write this turn: ${data.message || data.code}.`;
      break;
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
                 : "The debate starts when a researcher presses Start. This page updates by itself." };
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

// ---------------------------------------------------------------- evidence: quotes in speeches

// The same markup the server reads (debates/quotes.py).
const QUOTE_MARKUP = /<quote\s*>([\s\S]*?)<\/quote\s*>/gi;
const SPAN_QUOTE = /<quote\s+span\s*=\s*["'](\d+)\s*:\s*(\d+)["']\s*\/>/gi;
const OPENING_TAG = /<quote\s*>/i;
const HALF_A_TAG = /<\/?(q(u(o(t(e\s*)?)?)?)?)?$/i; // "<", "<qu", "</quo": the rest is still on its way

// What each status means, in words and a sign: colour is never the only sign. The same words as
// the server's (debates/quotes.py); tests/test_quote_rendering.py holds them equal.
export const QUOTE_LABELS = {
  verified: "verified quote",
  near: "near match",
  unverified: "not found in the passage",
  unchecked: "not checked",
  pending: "checked when saved",
};
export const QUOTE_SIGNS = { verified: "✓", near: "≈", unverified: "✗", unchecked: "?", pending: "…" };

// A speech as pieces: {text} for the speaker's words, {quote, status} for each quote. The i-th
// quote takes the i-th status the server sent, "unchecked" when there is none (as
// debates.quotes.speech_segments cuts it). `streaming`: the text is still being written, so a
// quote may be open and a tag cut in half.
export function speechSegments(text, quotes = [], { streaming = false } = {}) {
  const segments = [];
  let last = 0;
  let index = 0;
  for (const match of (text || "").matchAll(QUOTE_MARKUP)) {
    if (match.index > last) segments.push({ text: text.slice(last, match.index) });
    const checked = quotes[index];
    segments.push({ quote: match[1].trim(), status: (checked && checked.status) || (streaming ? "pending" : "unchecked") });
    index += 1;
    last = match.index + match[0].length;
  }
  let rest = (text || "").slice(last);
  if (streaming) {
    const open = rest.search(OPENING_TAG);
    if (open >= 0) {
      if (open > 0) segments.push({ text: rest.slice(0, open) });
      const opened = rest.slice(open).replace(OPENING_TAG, "").replace(HALF_A_TAG, "");
      segments.push({ quote: opened.trimStart(), status: "pending", open: true });
      rest = "";
    } else {
      rest = rest.replace(HALF_A_TAG, "");
    }
  }
  if (rest) segments.push({ text: rest });
  return segments;
}

// A speech's pieces as the nodes the page shows, without a DOM: a string for the speaker's words,
// {tag, className, children} for an element. The server's pages show the same nodes (the
// speech_text tag of debates/templatetags/quote_marks.py).
export function speechNodes(segments) {
  return segments.map((segment) => (segment.quote === undefined ? segment.text : quoteNode(segment)));
}

// A quote marked by its status; one still being written gets its badge once saved.
export function quoteNode({ quote, status, open = false }) {
  const children = [{ tag: "q", className: "", children: [quote] }];
  if (status !== "pending") children.push(" ", { tag: "span", className: "quote-badge", children: [quoteBadge(status)] });
  return { tag: "span", className: `quote quote-${status}${open ? " open" : ""}`, children };
}

export function quoteBadge(status) {
  return `${QUOTE_SIGNS[status] || ""} ${QUOTE_LABELS[status] || status}`.trim();
}

// Characters counted against quote budgets, as the server counts them: the quoted text, trimmed,
// in code points; a span quote counts the passage characters it names.
export function quoteChars(text) {
  let count = 0;
  for (const match of (text || "").matchAll(QUOTE_MARKUP)) count += Array.from(match[1].trim()).length;
  for (const match of (text || "").matchAll(SPAN_QUOTE)) count += Math.max(0, Number(match[2]) - Number(match[1]));
  return count;
}

export function quotesUsedBy(state, seat) {
  return state.turns.filter((t) => t.seat === seat && t.kind === "speech").reduce((sum, turn) => {
    const checked = turn.payload && turn.payload.quotes;
    if (checked) return sum + checked.reduce((n, q) => n + Array.from(q.text).length, 0);
    return sum + quoteChars(turn.text || "");
  }, 0);
}

// The protocol's quote budgets as they stand for this debater's next speech, or null without any:
// {perTurn, perDebate, debateLeft, inDraft, allowed, over}.
export function quoteBudget(state, draft) {
  const perTurn = state.protocol.quote_chars_per_turn ?? null;
  const perDebate = state.protocol.quote_chars_per_debate ?? null;
  if (perTurn === null && perDebate === null) return null;
  const debateLeft = perDebate === null ? null : Math.max(0, perDebate - quotesUsedBy(state, state.my_seat));
  const allowed = Math.min(...[perTurn, debateLeft].filter((n) => n !== null));
  const inDraft = quoteChars(draft);
  return { perTurn, perDebate, debateLeft, inDraft, allowed, over: Math.max(0, inDraft - allowed) };
}

// Every quote the viewer may see, in the order it was made (as debates/snapshots.py builds it).
export function quotesPanel(turns) {
  return turns.flatMap((turn) => ((turn.payload && turn.payload.quotes) || [])
    .map((quote) => ({ ...quote, round: turn.round, seat: turn.seat })));
}

// ---------------------------------------------------------------- AI turns being written

// The server does not store these frames (ai_turn_started, ai_token, ai_turn_retry,
// ai_turn_failed); `progress` is a Map of the turns being written, keyed by aiKey.
export function aiKey(seat, round) {
  return `${round}:${seat}`;
}

export function applyAiFrame(progress, frame) {
  const key = aiKey(frame.seat, frame.round);
  let entry = progress.get(key);
  if (!entry || frame.type === "ai_turn_started") {
    const started = frame.type === "ai_turn_started";
    entry = { seat: frame.seat, round: frame.round, streamsText: started ? !!frame.streams_text : !!frame.delta,
              text: "", chars: 0, retries: 0, status: "writing", joinedLate: !started };
    progress.set(key, entry);
  }
  switch (frame.type) {
    case "ai_token":
      if (frame.delta) {
        entry.text += frame.delta;
        entry.streamsText = true;
      }
      if (frame.candidate !== undefined) entry.candidate = frame.candidate;
      entry.chars = Number.isInteger(frame.chars) ? frame.chars : entry.chars + Array.from(frame.delta || "").length;
      entry.status = "writing";
      break;
    case "ai_turn_retry": // the partial text is void: the turn starts again
      entry.text = "";
      entry.chars = 0;
      entry.joinedLate = false;
      entry.retries += 1;
      entry.retry = { code: frame.code, message: frame.message, attempt: frame.attempt };
      break;
    case "ai_turn_failed":
      entry.status = "failed";
      entry.error = { code: frame.code, message: frame.message || frame.code };
      break;
    default:
      break;
  }
  return entry;
}

// Drops what the saved turns now show: a placeholder goes once its speech (or timeout) is in the
// transcript, or once the debate is over. A failure's reason moves to the timed-out turn.
export function settleAiProgress(progress, state) {
  const over = ["awaiting_verdict", "complete", "abandoned"].includes(state.status);
  for (const [key, entry] of progress) {
    const turn = state.turns.find((t) => t.seat === entry.seat && t.round === entry.round
                                         && (t.kind === "speech" || t.kind === "timeout"));
    if (turn) {
      if (entry.status === "failed" && turn.kind === "timeout") turn.ai_error = entry.error;
      progress.delete(key);
    } else if (over || (Number.isInteger(state.round) && entry.round < state.round)) {
      progress.delete(key);
    }
  }
}

// Only a viewer the state tells (seats[].ai) learns that a seat is an AI.
export function aiSeatName(state, seat) {
  const name = capitalise(seatName(state, seat));
  const known = state.seats.find((s) => s.seat === seat);
  return known && known.ai ? `${name} (AI)` : name;
}

// What a placeholder says: {headline, detail}; detail is "" when the streamed text says it all.
export function describeAiProgress(state, entry) {
  const name = aiSeatName(state, entry.seat);
  if (entry.status === "failed") {
    return { headline: `${name} could not write this turn`, detail: entry.error.message };
  }
  const headline = `${name} is writing…`;
  if (entry.streamsText) return { headline, detail: "" };
  const characters = `${entry.chars} character${entry.chars === 1 ? "" : "s"}`;
  if (state.protocol.rounds[entry.round] === "simultaneous") {
    return { headline, detail: `writing… (${characters}, sealed)` };
  }
  const draft = entry.candidate !== undefined ? `draft ${entry.candidate + 1}, ` : "";
  return { headline, detail: `writing… (${draft}${characters}, shown when saved)` };
}
