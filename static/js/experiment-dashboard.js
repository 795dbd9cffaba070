// The experiment dashboard: a websocket that receives a fresh summary whenever a debate of the
// experiment changes (judging/consumers.py), and redraws the numbers and the debates in progress.
const root = document.querySelector("[data-dashboard]");
const experimentId = root.dataset.experiment;
const field = (name) => root.querySelector(`[data-field="${name}"]`);
let attempts = 0;

function setConnection(kind, text) {
  const el = root.querySelector("[data-dashboard-conn]");
  el.className = `conn ${kind}`;
  el.textContent = text;
}

function element(tag, className, text) {
  const el = document.createElement(tag);
  if (className) el.className = className;
  if (text !== undefined) el.textContent = text;
  return el;
}

function debateRow(row) {
  const item = element("li", "debate-item");
  const what = element("div", "what");
  const link = element("a", "q", `Debate ${row.id}: ${row.question}`);
  link.href = row.url;
  const meta = element("span", "meta");
  meta.append(element("span", `pill ${row.status}`, row.status), element("span", null, row.protocol));
  if (row.round !== null && row.round !== undefined) meta.append(element("span", null, `round ${row.round + 1}`));
  if (row.waiting_for.length) meta.append(element("span", null, `waiting for ${row.waiting_for.join(", ")}`));
  what.append(link, meta);
  item.append(what);
  return item;
}

function render(summary) {
  field("debates").textContent = summary.debates;
  field("verdicts").textContent = summary.verdicts.total;
  const total = summary.verdicts.total;
  field("verdicts-in").textContent = `${total} verdict${total === 1 ? "" : "s"} in (${summary.verdicts.people} by people)`;
  field("verdict-kinds").textContent = `${summary.verdicts.live} / ${summary.verdicts.offline} / ${summary.verdicts.ai}`;
  const current = summary.current_version;
  field("target").textContent = current && current.target ? `${current.verdicts} / ${current.target}` : "—";
  const progress = field("progress");
  progress.hidden = !(current && current.target);
  progress.value = current && current.progress ? current.progress : 0;
  for (const row of summary.by_status) {
    const count = root.querySelector(`[data-status-count="${row.status}"]`);
    if (count) count.textContent = row.count;
  }
  const offline = summary.offline_assignments;
  field("offline").textContent = `${offline.assigned} assigned, ${offline.in_progress} in progress, ${offline.done} done`;
  field("in-progress-total").textContent = `(${summary.in_progress_total})`;
  const list = field("in-progress");
  const rows = summary.in_progress.map(debateRow);
  list.replaceChildren(...(rows.length ? rows : [element("li", "empty", "No debates in progress.")]));
  renderVersions(summary.versions);
  root.dataset.updated = String(Date.now());
}

// The page's Versions table (outside the dashboard card) follows the same summary.
function renderVersions(versions) {
  for (const version of versions) {
    const row = document.querySelector(`[data-version-row="${version.number}"]`);
    if (!row) continue;
    row.querySelector("[data-version-debates]").textContent = version.debates;
    row.querySelector("[data-version-complete]").textContent = version.complete;
    row.querySelector("[data-version-verdicts]").textContent = version.verdicts;
    const progress = row.querySelector("progress");
    if (progress) progress.value = version.verdicts;
    const target = row.querySelector("[data-version-target]");
    if (target) target.textContent = `${version.verdicts} / ${version.target}`;
  }
}

function connect() {
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  const socket = new WebSocket(`${scheme}//${location.host}/ws/experiments/${experimentId}/`);
  setConnection("connecting", attempts ? "Reconnecting…" : "Connecting…");
  socket.addEventListener("message", (event) => {
    const frame = JSON.parse(event.data);
    if (frame.type !== "summary") return;
    attempts = 0;
    setConnection("open", "Live");
    render(frame);
  });
  socket.addEventListener("close", (event) => {
    if (event.code === 4403) { setConnection("closed", "No access"); return; }
    attempts += 1;
    setConnection("retrying", "Offline, reconnecting…");
    setTimeout(connect, Math.min(15000, 500 * 2 ** attempts));
  });
}

connect();
