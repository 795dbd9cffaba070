// The lobby stays current without a reload: when the person's own websocket (personal-socket.js)
// says their debates changed (seated, their turn, a debate ended, a new seat) it fetches itself and
// swaps in the new lists; while the socket is down it does so every 30 seconds. "Your turn" and
// "Give verdict" are announced in the tab title and, when allowed, as a browser notification.
import { clearNotice, notify, offerNotifications } from "./notices.js";
import { listenForNotices } from "./personal-socket.js";

const main = document.querySelector("main");
const lists = () => main.querySelector("[data-lobby]");
let last = lists()?.innerHTML;
let refreshing = null;

function calls(root) {
  return root.querySelectorAll(".pill.turn, a.button[href$='/verdict/']:not(.secondary)").length;
}

function announce(root, before) {
  const now = calls(root);
  if (now > before) notify(now === 1 ? "Your turn" : `${now} debates need you`, "Open DebateLab to act.");
  else if (now === 0) clearNotice();
}

async function fetchLists() {
  try {
    const response = await fetch(location.href, { headers: { Accept: "text/html" } });
    if (response.ok && !response.redirected) {
      const fresh = new DOMParser().parseFromString(await response.text(), "text/html").querySelector("[data-lobby]");
      if (fresh && fresh.innerHTML !== last) {
        const before = calls(lists());
        lists().innerHTML = fresh.innerHTML;
        last = fresh.innerHTML;
        lists().dataset.updated = String(Date.now());
        announce(lists(), before);
        offerNotifications(lists().querySelector("[data-enable-notifications]"));
      }
    }
  } catch {
    /* offline for a moment: the next notice or poll tries again */
  }
}

// Notices that come while a refresh runs are folded into one more refresh after it.
function refresh() {
  if (refreshing) {
    refreshing.again = true;
    return;
  }
  refreshing = { again: false };
  fetchLists().finally(() => {
    const again = refreshing.again;
    refreshing = null;
    if (again) refresh();
  });
}

function onNotice(notice) {
  if (notice.kind === "debate_ended") notify("The debate has ended", "Open DebateLab to see it.");
  else if (notice.kind === "seated") notify("You can judge now", "A debate is ready for you.");
  refresh();
}

if (lists()) {
  announce(lists(), 0);
  listenForNotices(onNotice, { fallback: refresh, fallbackMs: 30000, onOpen: refresh });
}
