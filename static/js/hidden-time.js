// Time a judge's debate pages spend hidden (another tab, a minimised window), summed per debate over
// the room and the verdict page in this tab, and sent with the verdict as a quality measure.
const debateId = (location.pathname.match(/^\/debates\/(\d+)\//) || [])[1];
const key = `debatelab:hidden-seconds:${debateId}`;
let hiddenSince = document.visibilityState === "hidden" ? Date.now() : null;

function stored() {
  return Number(sessionStorage.getItem(key)) || 0;
}

function settle() {
  if (hiddenSince === null) return;
  sessionStorage.setItem(key, String(stored() + (Date.now() - hiddenSince) / 1000));
  hiddenSince = null;
}

if (debateId) {
  document.addEventListener("visibilitychange", () => {
    if (document.visibilityState === "hidden") hiddenSince = Date.now();
    else settle();
  });
  window.addEventListener("pagehide", () => { settle(); });
}

// Seconds hidden so far for this page's debate.
export function hiddenSeconds() {
  settle();
  if (document.visibilityState === "hidden") hiddenSince = Date.now();
  return stored();
}
