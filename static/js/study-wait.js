// The study's waiting room: asks the server every few seconds whether a debate is ready, updates
// who is waiting, and when the participant is seated says so in the tab title and a notification
// before moving on. Without JavaScript the page's meta refresh does the same more slowly.
import { notify } from "./notices.js";

const room = document.querySelector("[data-waiting]");
const statusUrl = room.dataset.statusUrl;

async function check() {
  try {
    const response = await fetch(statusUrl, { headers: { Accept: "application/json" } });
    if (!response.ok) throw new Error(String(response.status));
    const state = await response.json();
    room.querySelector("[data-room]").textContent = state.room_text;
    if (state.status !== "waiting" && state.status !== "qualified") {
      if (state.status === "judging") notify("You can judge now", "A debate is ready for you.");
      setTimeout(() => location.reload(), 800);
      return;
    }
  } catch {
    /* the next check tries again */
  }
  setTimeout(check, 3000);
}

document.querySelector("meta[http-equiv=refresh]")?.remove();
setTimeout(check, 3000);
