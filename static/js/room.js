// The debate room: one page for debaters, the judge and observers, driven by the role-filtered
// state JSON. The connection (event numbers, resync, reconnects, re-sending unacknowledged
// actions) is room-connection.js; this file renders what it delivers and sends what people write.
import {
  ROUND_NAMES, applyEvent, capitalise, describeTurn, isMyTurn, lastFeedbackPercents, sealedSpeeches, seatName,
} from "./debate-state.js";
import {
  QUOTE_LABELS, aiKey, aiSeatName, applyAiFrame, describeAiProgress, quoteBudget, quoteNode, settleAiProgress,
  speechNodes, speechSegments,
} from "./debate-state.js";
import { bindSliders, leaders, splitEvenly } from "./probability-sliders.js";
import { mountPixelBoard } from "./pixel-board.js";
import { RoomConnection } from "./room-connection.js";

const root = document.getElementById("room");
const $ = (selector) => root.querySelector(selector);
const debateId = root.dataset.debate;
const mayStart = root.dataset.mayStart === "1";

let state = JSON.parse(document.getElementById("debate-state").textContent);
const seenTurns = new WeakSet();
let pixelBoard = null; // image debates: the board (mounted at the end of this file)
let ownLastSpeech = null; // {text, private_note} of this client's last acknowledged speech
const aiProgress = new Map(); // AI turns being written: aiKey -> entry (debate-state.js)
const aiItems = new Map(); // aiKey -> its placeholder <li> in the transcript

// ---------------------------------------------------------------- connection

function socketUrl() {
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  return `${scheme}//${location.host}/ws/debates/${debateId}/`;
}

const connection = new RoomConnection({
  openSocket: () => new WebSocket(socketUrl()),
  seq: state.seq,
  onState: receiveState,
  onEvent: receiveEvent,
  onAck: acknowledged,
  onRefused: refused,
  onFrame: receive,
  onStatus: showConnection,
  onNoAccess: () => showError("You no longer have access to this debate."),
});
const send = (message) => connection.send(message);

function showConnection(kind, { attempts = 0, delayMs = 0 }) {
  const el = $("[data-conn]");
  el.className = `conn ${kind}`;
  el.textContent = {
    connecting: attempts ? "Reconnecting…" : "Connecting…",
    retrying: `Offline, retrying in ${Math.ceil(delayMs / 1000)} s`,
    open: "Connected",
    closed: "No access",
  }[kind];
}

window.addEventListener("online", () => connection.reconnectNow());
document.addEventListener("visibilitychange", () => {
  if (document.visibilityState === "visible") connection.reconnectNow();
});

// ---------------------------------------------------------------- frames from the server

function receiveState(frame) {
  state = frame;
  render({ freshState: true });
}

function receiveEvent(frame) {
  const said = applyEvent(state, frame, ownLastSpeech);
  if (frame.kind === "ai_turn_failed") applyAiFrame(aiProgress, { ...frame.data, type: "ai_turn_failed" });
  if (said) announce(said);
  render({ freshState: false });
}

// Frames other than the state, events, acknowledgements, errors and pongs.
function receive(frame) {
  switch (frame.type) {
    case "presence":
      for (const seat of state.seats) seat.online = frame.seats.includes(seat.seat);
      renderSeats();
      break;
    case "ai_turn_started":
    case "ai_token":
    case "ai_turn_retry":
    case "ai_turn_failed":
      receiveAiFrame(frame);
      break;
    case "ai_turn_withdrawn": // an attempt that failed or is restarted: its streamed text is void
      aiProgress.delete(aiKey(frame.seat, frame.round));
      renderTranscript(false);
      break;
    default: // frame types this page does not know
      break;
  }
}

// ---------------------------------------------------------------- actions

function acknowledged(message) {
  if (message.type === "speech") {
    ownLastSpeech = { text: message.text, private_note: message.private_note };
    if (speech.text.value === message.text) { // unless the debater has started the next one already
      speech.text.value = "";
      localStorage.removeItem(draftKey());
    }
    if (speech.note.value === message.private_note) speech.note.value = "";
  } else if (message.type === "feedback") {
    if (feedback.comment.value === message.comment) feedback.comment.value = "";
    if (feedback.end) feedback.end.checked = false;
  }
  clearErrors();
  renderComposers();
}

function refused(frame, message) {
  showError(frame.message || "The server refused that.", message ? message.type : null);
  renderComposers();
}

// ---------------------------------------------------------------- rendering

function render({ freshState }) {
  const status = $("[data-status]");
  status.className = `pill ${state.status}`;
  status.textContent = capitalise(state.status.replace("_", " "));
  renderBanner();
  renderRounds();
  renderTranscript(freshState);
  renderQuotesPanel();
  renderSeats();
  renderComposers();
  if (pixelBoard) pixelBoard.render();
}

function renderBanner() {
  const turn = describeTurn(state, mayStart);
  const banner = $("[data-banner]");
  banner.className = `turn-banner ${turn.tone}`;
  $("[data-headline]").textContent = turn.headline;
  $("[data-detail]").textContent = turn.detail;
  const verdictLink = $("[data-verdict-link]");
  if (verdictLink) {
    verdictLink.hidden = !["awaiting_verdict", "complete"].includes(state.status);
    verdictLink.textContent = state.status === "complete" ? "See your verdict" : "Give your verdict →";
  }
  const startForm = $("[data-start-form]");
  if (startForm) startForm.hidden = state.status !== "scheduled";
  renderCountdown();
}

function renderCountdown() {
  const el = $("[data-countdown]");
  if (state.status !== "live" || !state.deadline) { el.hidden = true; return; }
  const left = Math.max(0, Math.round((Date.parse(state.deadline) - Date.now()) / 1000));
  el.hidden = false;
  el.textContent = left > 0 ? `${Math.floor(left / 60)}:${String(left % 60).padStart(2, "0")} left` : "Time is up";
  el.classList.toggle("low", left <= 15);
}
setInterval(renderCountdown, 500);

function renderRounds() {
  const list = $("[data-rounds]");
  list.replaceChildren(...state.protocol.rounds.map((kind, i) => {
    const item = document.createElement("li");
    item.textContent = `${i + 1}. ${ROUND_NAMES[kind] || kind}`;
    const finished = state.status !== "live" && state.status !== "scheduled";
    if (finished || (state.round !== null && i < state.round)) item.className = "done";
    if (state.status === "live" && i === state.round) {
      item.className = "current";
      item.setAttribute("aria-current", "step");
    }
    return item;
  }));
}

function renderTranscript(freshState) {
  const list = $("[data-transcript]");
  settleAiProgress(aiProgress, state);
  const items = state.turns.map((turn) => {
    const item = turnItem(turn);
    if (!freshState && !seenTurns.has(turn)) item.classList.add("new");
    seenTurns.add(turn);
    return item;
  });
  items.push(...aiProgressItems());
  list.replaceChildren(...items);
  $("[data-transcript-empty]").hidden = items.length > 0;
}

function turnItem(turn) {
  const item = element("li", `turn seat-${turn.seat}${turn.sealed ? " sealed" : ""}${turn.kind === "timeout" ? " timeout" : ""}`);
  const header = element("header");
  const who = turn.seat === "judge" ? "Judge" : capitalise(seatName(state, turn.seat));
  header.append(element("span", "who", turn.seat === state.my_seat ? `${who} (you)` : who),
                element("span", "when", `Round ${turn.round + 1}${turn.at ? ` · ${clock(turn.at)}` : ""}`));
  item.append(header);
  if (turn.kind === "timeout") {
    item.append(timeoutText(turn));
  } else if (turn.sealed) {
    item.append(element("p", "text", `${capitalise(seatName(state, turn.seat))} has submitted (sealed until both are in).`));
  } else if (turn.kind === "feedback") {
    item.append(probabilityBars(turn.probabilities || []));
    if (turn.text) item.append(judgeComment(turn.text));
    if (turn.end_debate) item.append(element("p", "ended", "The judge ended the debate here."));
  } else {
    item.append(speechText(turn.text || "", (turn.payload && turn.payload.quotes) || []));
    if (turn.seat === state.my_seat && sealedSpeeches(state).includes(turn)) {
      item.append(element("p", "sealed-note", "Sealed: the others see it when both speeches are in."));
    }
  }
  if (turn.private_note) {
    const note = element("div", "private");
    note.append(element("strong", null, "Your private note (only you see this)"), document.createTextNode(turn.private_note));
    item.append(note);
  }
  return item;
}

function probabilityBars(probabilities) {
  const bars = element("div", "bars");
  bars.setAttribute("role", "list");
  probabilities.forEach((p, i) => {
    const percent = Math.round(p * 100);
    const bar = element("div", "bar");
    bar.setAttribute("role", "listitem");
    const answer = state.question.answers[i] || `Answer ${i + 1}`;
    bar.append(element("span", "label", `${i + 1}. ${answer}`), element("span", "value", `${percent}%`));
    const track = element("div", "track");
    const fill = element("div", "fill");
    fill.style.width = `${percent}%`;
    track.append(fill);
    bar.append(track);
    bars.append(bar);
  });
  return bars;
}

function renderSeats() {
  const list = $("[data-seats]");
  list.replaceChildren(...state.seats.map((seat) => {
    const item = element("li", "seat");
    const dot = element("span", `dot${seat.online ? " online" : ""}`);
    dot.setAttribute("aria-hidden", "true");
    const name = element("span", `name seat-${seat.seat}`, seat.seat === "judge" ? "Judge" : seat.name);
    const you = seat.seat === state.my_seat ? " (you)" : "";
    let role = seat.seat === "judge" ? "judges" : `argues answer ${seat.answer + 1}`;
    if ((state.honest_seats || []).includes(seat.seat)) role += " · honest";
    if (seat.ai) role += " · AI";
    if (seat.identity) role += ` · ${seat.identity}`; // only where the experiment's blinding allows it
    item.append(dot, name, element("span", "sr-only", `${you}, ${seat.online ? "online" : "offline"}`),
                element("span", "role", `${role}${you}`));
    item.title = seat.online ? "Online now" : "Not connected";
    return item;
  }));
}

function element(tag, className, text) {
  const el = document.createElement(tag);
  if (className) el.className = className;
  if (text !== undefined) el.textContent = text;
  return el;
}

function clock(iso) {
  const date = new Date(iso);
  return Number.isNaN(date.getTime()) ? "" : date.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
}

function announce(text) {
  // Each news item is a new paragraph, so several quick events are all read out, in order.
  const region = $("[data-announcer]");
  region.append(element("p", null, text));
  while (region.children.length > 3) region.firstElementChild.remove();
}

// ---------------------------------------------------------------- evidence and AI turns in the transcript

// A speech with its quotes marked by status, in words as well as colour (as the server's pages show it).
function speechText(text, quotes, { streaming = false } = {}) {
  const paragraph = element("p", "text");
  paragraph.append(...speechNodes(speechSegments(text, quotes, { streaming })).map(toElement));
  return paragraph;
}

// A node of speechNodes or quoteNode (debate-state.js) as DOM.
function toElement(node) {
  if (typeof node === "string") return document.createTextNode(node);
  const made = element(node.tag, node.className);
  made.append(...node.children.map(toElement));
  return made;
}

function judgeComment(text) {
  const paragraph = element("p", "text judge-comment");
  paragraph.append(element("strong", null, state.view === "judge" ? "Your comment: " : "Judge asks: "), text);
  return paragraph;
}

function timeoutText(turn) {
  // Only viewers who may know the seat is an AI ever get the reason (the server strips it otherwise).
  const failure = turn.ai_error || (turn.payload && turn.payload.agent_error);
  if (!failure) return element("p", "text", "Ran out of time: no speech this turn.");
  const paragraph = element("p", "text ai-failure");
  paragraph.textContent = `${aiSeatName(state, turn.seat)} could not write this turn (${failure.message}). `
    + "The debate goes on without it.";
  return paragraph;
}

function renderQuotesPanel() {
  const list = $("[data-quotes]");
  if (!list) return;
  const quotes = state.quotes || [];
  list.replaceChildren(...quotes.map((quote) => {
    const item = element("li", `quote-item seat-${quote.seat}`);
    const head = element("div", "quote-head");
    head.append(element("span", `name seat-${quote.seat}`, capitalise(seatName(state, quote.seat))),
                element("span", "when", `Round ${quote.round + 1}`));
    item.append(head, toElement(quoteNode({ quote: quote.text, status: quote.status })));
    return item;
  }));
  $("[data-quotes-empty]").hidden = quotes.length > 0;
  $("[data-quotes-summary]").textContent = quotesSummary(quotes);
}

// "Debater A: 3 verified, 1 near match · Debater B: 1 not found in the passage"
function quotesSummary(quotes) {
  const seats = [...new Set(quotes.map((q) => q.seat))].sort();
  return seats.map((seat) => {
    const counts = ["verified", "near", "unverified"].map((status) => {
      const n = quotes.filter((q) => q.seat === seat && q.status === status).length;
      return n ? `${n} ${status === "verified" ? "verified" : QUOTE_LABELS[status]}` : "";
    }).filter(Boolean);
    return `${capitalise(seatName(state, seat))}: ${counts.join(", ")}`;
  }).join(" · ");
}

function receiveAiFrame(frame) {
  const entry = applyAiFrame(aiProgress, frame);
  settleAiProgress(aiProgress, state);
  const { headline, detail } = describeAiProgress(state, entry);
  if (frame.type === "ai_turn_started") announce(headline);
  if (frame.type === "ai_turn_failed") announce(`${headline}: ${detail}`);
  const item = aiProgress.has(aiKey(frame.seat, frame.round)) && aiItems.get(aiKey(frame.seat, frame.round));
  if (item && item.isConnected) fillAiItem(item, entry); // a token: only its own placeholder changes
  else renderTranscript(false);
}

// Placeholders for the AI turns being written, reused from frame to frame.
function aiProgressItems() {
  for (const key of aiItems.keys()) if (!aiProgress.has(key)) aiItems.delete(key);
  return Array.from(aiProgress, ([key, entry]) => {
    if (!aiItems.has(key)) aiItems.set(key, element("li"));
    const item = aiItems.get(key);
    fillAiItem(item, entry);
    return item;
  });
}

function fillAiItem(item, entry) {
  const failed = entry.status === "failed";
  const { headline, detail } = describeAiProgress(state, entry);
  item.className = `turn ai-progress seat-${entry.seat} ${failed ? "ai-failed" : "ai-writing"}`;
  item.setAttribute("aria-busy", failed ? "false" : "true");
  const header = element("header");
  header.append(element("span", "who", headline), element("span", "when", `Round ${entry.round + 1}`));
  const body = [header];
  if (failed) {
    body.push(element("p", "notice error ai-status", `${detail}. The turn is skipped and the debate goes on.`));
  } else if (entry.streamsText && entry.text) {
    const text = speechText(entry.text, [], { streaming: true });
    text.classList.add("streaming");
    if (entry.joinedLate) text.prepend("… ");
    body.push(text);
  } else {
    body.push(element("p", "text ai-status", detail || "…"));
  }
  if (!failed && entry.retry) {
    body.push(element("p", "ai-retry", `Retrying after a hiccup (attempt ${entry.retry.attempt || entry.retries + 1})…`));
  }
  item.replaceChildren(...body);
}

// ---------------------------------------------------------------- the debater's composer

const speechForm = $("[data-speech-form]");
const speech = speechForm && {
  section: $("[data-composer]"),
  text: $("#speech-text"),
  note: $("#speech-note"),
  counter: $("[data-counter]"),
  hint: $("[data-hint]"),
  send: $("[data-send]"),
  error: $("[data-error]"),
};

function draftKey() {
  return `debatelab:draft:${debateId}:${state.my_seat}`;
}

// Characters as the server counts them (code points, so an emoji is one).
function charCount(text) {
  return Array.from(text).length;
}

// The comment of the judge's latest feedback: the question the debaters answer next.
function judgeQuestion() {
  const feedback = state.turns.filter((t) => t.kind === "feedback");
  const last = feedback[feedback.length - 1];
  return last && last.text && last.text.trim() ? last.text : "";
}

function renderJudgeQuestion() {
  const box = $("[data-judge-question]");
  if (!box) return;
  const question = judgeQuestion();
  box.hidden = !question;
  box.querySelector("[data-judge-question-text]").textContent = question;
}

function renderSpeechComposer() {
  if (!speech) return;
  speech.section.hidden = state.status !== "live";
  renderJudgeQuestion();
  const length = charCount(speech.text.value);
  const limit = state.protocol.char_limit;
  speech.counter.textContent = `${length} / ${limit}`;
  speech.counter.classList.toggle("over", length > limit);
  const sending = connection.isPending("speech");
  const mine = isMyTurn(state);
  const filled = speech.text.value.trim().length > 0;
  speech.send.disabled = !mine || sending || !filled || length > limit;
  speech.send.textContent = sending ? "Sending…" : "Send speech";
  let hint = "";
  if (sending) hint = connection.isOpen() ? "Sending your speech…" : "Offline: your speech will be sent when the connection is back.";
  else if (!mine && sealedSpeeches(state).some((t) => t.seat === state.my_seat)) hint = "Your speech is in. You can draft the next one.";
  else if (!mine) hint = "Not your turn yet. You can draft now and send when it is.";
  else if (length > limit) hint = `Shorten your speech by ${length - limit} characters.`;
  else if (!filled) hint = "Write your speech to send it.";
  speech.hint.textContent = hint;
  renderQuoteBudget();
}

if (speech) {
  speech.text.value = localStorage.getItem(draftKey()) || "";
  speech.text.addEventListener("input", () => {
    localStorage.setItem(draftKey(), speech.text.value);
    renderSpeechComposer();
  });
  speech.text.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) {
      event.preventDefault();
      speechForm.requestSubmit();
    }
  });
  speechForm.addEventListener("submit", (event) => {
    event.preventDefault();
    clearErrors();
    const text = speech.text.value;
    if (!isMyTurn(state)) return showError("It is not your turn yet.", "speech");
    if (!text.trim()) return showError("Write something first: a speech cannot be empty.", "speech");
    if (charCount(text) > state.protocol.char_limit) {
      return showError(`A speech may have at most ${state.protocol.char_limit} characters.`, "speech");
    }
    if (connection.isPending("speech")) return;
    send({ type: "speech", text, private_note: speech.note.value, ...(pixelBoard ? pixelBoard.claims() : {}) });
    renderSpeechComposer();
  });
}

// ---------------------------------------------------------------- quoting in the debater's composer

const quoting = speech && {
  budget: $("[data-quote-budget]"),
  button: $("[data-quote-selection]"),
  passage: $("#passage .passage"),
  grabbed: "",
};

function renderQuoteBudget() {
  if (!quoting || !quoting.budget) return;
  const budget = quoteBudget(state, speech.text.value);
  quoting.budget.hidden = !budget;
  if (!budget) return;
  const limits = [];
  if (budget.perTurn !== null && budget.perDebate !== null) limits.push(`${budget.perTurn} per speech`);
  if (budget.perDebate !== null) limits.push(`${budget.debateLeft} of ${budget.perDebate} left in this debate`);
  let text = `Quotes in this speech: ${budget.inDraft} / ${budget.allowed} characters`;
  text += limits.length ? ` (${limits.join(", ")}).` : ".";
  if (budget.over) text += ` Quote ${budget.over} characters less, or the speech will be refused.`;
  quoting.budget.textContent = text;
  quoting.budget.classList.toggle("over", budget.over > 0);
}

// The words selected in the passage, if the selection lies inside it.
function selectedPassageText() {
  const selection = document.getSelection();
  if (!quoting.passage || !selection || selection.isCollapsed) return "";
  if (!quoting.passage.contains(selection.anchorNode) || !quoting.passage.contains(selection.focusNode)) return "";
  return selection.toString().trim();
}

if (quoting && quoting.button) {
  quoting.button.hidden = !quoting.passage;
  quoting.button.addEventListener("mousedown", () => { quoting.grabbed = selectedPassageText(); });
  quoting.button.addEventListener("click", () => {
    const words = quoting.grabbed || selectedPassageText();
    quoting.grabbed = "";
    if (!words) {
      speech.error.textContent = "Select some words in the passage first, then press the button again.";
      return;
    }
    speech.error.textContent = "";
    const field = speech.text;
    const start = field.selectionStart ?? field.value.length;
    const end = field.selectionEnd ?? start;
    const before = start > 0 && !/\s$/.test(field.value.slice(0, start)) ? " " : "";
    field.setRangeText(`${before}<quote>${words}</quote> `, start, end, "end");
    field.focus();
    field.dispatchEvent(new Event("input")); // saves the draft and recounts
  });
}

// ---------------------------------------------------------------- the judge's feedback form

const feedbackForm = $("[data-feedback-form]");
const feedback = feedbackForm && {
  section: $("[data-feedback]"),
  comment: $("#feedback-comment"),
  counter: $("[data-feedback-counter]"),
  end: $("[data-end-debate]"),
  hint: $("[data-feedback-hint]"),
  send: $("[data-feedback-send]"),
  error: $("[data-feedback-error]"),
  sliders: null,
  openRound: null,
};

function renderFeedbackForm() {
  if (!feedback || !feedback.sliders) return;
  const open = isMyTurn(state) && state.round_kind === "judge_feedback";
  if (open && feedback.openRound !== state.round) { // a new feedback round: start from the last report
    feedback.openRound = state.round;
    feedback.sliders.set(lastFeedbackPercents(state) || splitEvenly(state.question.answers.length));
  }
  feedback.section.hidden = !open;
  const length = charCount(feedback.comment.value);
  feedback.counter.textContent = `${length} / ${state.protocol.char_limit}`;
  feedback.counter.classList.toggle("over", length > state.protocol.char_limit);
  const sending = connection.isPending("feedback");
  feedback.send.disabled = sending || length > state.protocol.char_limit;
  feedback.send.textContent = sending ? "Sending…" : (feedback.end && feedback.end.checked ? "Send and end the debate" : "Send feedback");
  const values = feedback.sliders.values();
  const top = leaders(values);
  feedback.hint.textContent = top.length === 1 ? `You lean towards answer ${top[0] + 1} (${values[top[0]]}%).` : "You are undecided so far.";
}

if (feedback) {
  feedback.sliders = bindSliders(feedbackForm.querySelectorAll("[data-prob]"), () => renderFeedbackForm());
  feedback.comment.addEventListener("input", renderFeedbackForm);
  if (feedback.end) feedback.end.addEventListener("change", renderFeedbackForm);
  feedbackForm.addEventListener("submit", (event) => {
    event.preventDefault();
    clearErrors();
    if (connection.isPending("feedback")) return;
    if (!isMyTurn(state)) return showError("It is not your turn to give feedback.", "feedback");
    send({
      type: "feedback",
      probabilities: feedback.sliders.values().map((v) => v / 100),
      comment: feedback.comment.value,
      end_debate: !!(feedback.end && feedback.end.checked),
    });
    renderFeedbackForm();
  });
}

function renderComposers() {
  renderSpeechComposer();
  renderFeedbackForm();
}

function showError(text, type = null) {
  // Errors go next to the form they concern; the other frames (sync, ping) land by the composer in view.
  let box = null;
  if (type === "feedback" && feedback) box = feedback.error;
  else if (type === "speech" && speech) box = speech.error;
  else box = (feedback && !feedback.section.hidden && feedback.error) || (speech && speech.error) || null;
  if (box) box.textContent = text;
  else announce(text);
}

function clearErrors() {
  if (speech) speech.error.textContent = "";
  if (feedback) feedback.error.textContent = "";
}

// ---------------------------------------------------------------- start

function drawHiddenImage() {
  const canvas = $("[data-pixels]");
  const pixels = state.hidden && state.hidden.image;
  if (!canvas || !Array.isArray(pixels)) return;
  const context = canvas.getContext("2d");
  const image = context.createImageData(28, 28);
  pixels.flat().forEach((grey, i) => {
    image.data.set([grey, grey, grey, 255], i * 4);
  });
  context.putImageData(image, 0, 0);
}

// Image debates: the 28x28 board (static/js/pixel-board.js).
pixelBoard = mountPixelBoard(root, { getState: () => state, send, draftText: () => (speech ? speech.text.value : "") });
drawHiddenImage();
render({ freshState: true });
connection.start();
