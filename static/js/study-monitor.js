// The experiment page's Study card: every five seconds the participants by status, the waiting
// room, dropouts and how many debates have their judgment (judging/crowd.py monitor).
const card = document.querySelector("[data-study][data-monitor-url]");

function plural(n, word) {
  return `${n} ${word}${n === 1 ? "" : "s"}`;
}

function render(m) {
  for (const [status, count] of Object.entries(m.by_status)) {
    const cell = card.querySelector(`[data-participant-count="${status}"]`);
    if (cell) cell.textContent = count;
  }
  const room = m.waiting_room;
  card.querySelector("[data-waiting-room]").textContent =
    `Waiting now: ${room.waiting} (median wait ${room.median_wait} s, longest ${room.longest_wait} s); `
    + `${plural(room.open_debates, "debate")} waiting for a judge.`;
  card.querySelector("[data-study-progress]").textContent =
    `${m.debates_judged} of ${m.debates} debates judged, ${m.debates_with_judge} with a judge; `
    + `${m.dropouts} timed out or dropped out.`;
  card.dataset.updated = String(Date.now());
}

async function poll() {
  try {
    const response = await fetch(card.dataset.monitorUrl, { headers: { Accept: "application/json" } });
    if (response.ok) render(await response.json());
  } catch {
    /* the next round tries again */
  }
  setTimeout(poll, 5000);
}

if (card) setTimeout(poll, 5000);

// A link to copy is selected whole when clicked.
document.querySelectorAll("[data-study-link], [data-invitation-link]").forEach((input) => {
  input.addEventListener("focus", () => input.select());
});
