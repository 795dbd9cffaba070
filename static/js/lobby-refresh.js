// The lobby stays current without a reload: every ten seconds it fetches itself and swaps in the
// new lists when they changed. "Your turn" and "Give verdict" are announced in the tab title and,
// when allowed, as a browser notification.
import { clearNotice, notify } from "./notices.js";

const main = document.querySelector("main");
const lists = () => main.querySelector("[data-lobby]");
let last = lists()?.innerHTML;

function calls(root) {
  return root.querySelectorAll(".pill.turn, a.button[href$='/verdict/']:not(.secondary)").length;
}

function announce(root, before) {
  const now = calls(root);
  if (now > before) notify(now === 1 ? "Your turn" : `${now} debates need you`, "Open DebateLab to act.");
  else if (now === 0) clearNotice();
}

async function refresh() {
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
      }
    }
  } catch {
    /* offline for a moment: the next round tries again */
  }
  setTimeout(refresh, 10000);
}

if (lists()) {
  announce(lists(), 0);
  setTimeout(refresh, 10000);
}
