// Notices for people who are not looking at the page: the tab title and, when the person allowed
// it, a browser notification. Used by the debate room (watching its banner, so the room's own
// script needs no change), the study's waiting page and the lobby.
const originalTitle = document.title;

export function notify(headline, detail = "") {
  document.title = `(!) ${headline} · ${originalTitle}`;
  if (document.visibilityState === "visible" && document.hasFocus()) return;
  if ("Notification" in window && Notification.permission === "granted") {
    try { new Notification(headline, { body: detail, tag: "debatelab" }); } catch { /* some browsers refuse outside a service worker */ }
  }
}

export function clearNotice() {
  document.title = originalTitle;
}

// A button that asks for permission to show browser notifications (browsers need a click for it).
export function offerNotifications(button) {
  if (!button || !("Notification" in window) || Notification.permission !== "default") return;
  button.hidden = false;
  button.addEventListener("click", async () => {
    await Notification.requestPermission();
    button.hidden = true;
  });
}

// The room: the banner's headline says whose turn it is; the notices follow it.
const ROOM_NOTICES = {
  "Your turn": "It is your turn in the debate.",
  "The debate has ended": "The debate has ended.",
};

function watchRoomBanner(headline) {
  let last = "";
  const update = () => {
    const text = headline.textContent.trim();
    if (text === last) return;
    last = text;
    if (ROOM_NOTICES[text]) notify(text, ROOM_NOTICES[text]);
    else clearNotice();
  };
  new MutationObserver(update).observe(headline, { childList: true, characterData: true, subtree: true });
  update();
}

const banner = document.querySelector("[data-headline]");
if (banner) watchRoomBanner(banner);
offerNotifications(document.querySelector("[data-enable-notifications]"));
