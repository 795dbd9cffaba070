// The study's waiting room: the person's own websocket (personal-socket.js) says at once when the
// room changes (the text is updated in place) and when a debate waits for a judge (the page then
// asks the server to seat them). Seated, the tab title and a notification say so before the page
// moves on. While the socket is down the page asks every 20 seconds; it also asks when the
// study's wait limit passes. Without JavaScript the page's meta refresh does the same more slowly.
import { notify } from "./notices.js";
import { listenForNotices } from "./personal-socket.js";

const room = document.querySelector("[data-waiting]");
const statusUrl = room.dataset.statusUrl;
let checking = false;
let moving = false;
let limitTimer = null;

function showRoom(text) {
  if (text) room.querySelector("[data-room]").textContent = text;
}

function moveOn(status) {
  if (moving) return;
  moving = true;
  if (status === "judging") notify("You can judge now", "A debate is ready for you.");
  setTimeout(() => location.reload(), 800);
}

async function check() {
  if (checking || moving) return;
  checking = true;
  try {
    const response = await fetch(statusUrl, { headers: { Accept: "application/json" } });
    if (!response.ok) throw new Error(String(response.status));
    const state = await response.json();
    showRoom(state.room_text);
    if (state.status !== "waiting" && state.status !== "qualified") moveOn(state.status);
    else if (state.check_in_seconds != null) {
      clearTimeout(limitTimer);
      limitTimer = setTimeout(check, (state.check_in_seconds + 1) * 1000);
    }
  } catch {
    /* the socket's next notice, or the fallback poll, tries again */
  } finally {
    checking = false;
  }
}

function onNotice(notice) {
  if (notice.kind === "room") {
    showRoom(notice.room_text);
    if (notice.open_debates > 0) check();
  } else if (notice.kind === "seated") {
    moveOn("judging");
  } else {
    check();
  }
}

document.querySelector("meta[http-equiv=refresh]")?.remove();
room.dataset.live = "true";
listenForNotices(onNotice, { fallback: check, fallbackMs: 20000, onOpen: check });
