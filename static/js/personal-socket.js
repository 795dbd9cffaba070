// The signed-in person's own websocket (/ws/me/): the server pushes a notice when they are seated
// as a judge, when it is their turn, when a debate of theirs ends and when their lobby or waiting
// room changes. A page passes what to do with each notice, and what to do every `fallbackMs` while
// the socket is down (polling slowly, so a page still moves on when the socket cannot connect).
export function listenForNotices(onNotice, { fallback, fallbackMs = 20000, onOpen } = {}) {
  let attempts = 0;
  let socket = null;
  let pollTimer = null;

  const startPolling = () => {
    if (pollTimer || !fallback) return;
    pollTimer = setInterval(fallback, fallbackMs);
  };
  const stopPolling = () => {
    clearInterval(pollTimer);
    pollTimer = null;
  };

  function connect() {
    const scheme = location.protocol === "https:" ? "wss:" : "ws:";
    socket = new WebSocket(`${scheme}//${location.host}/ws/me/`);
    socket.addEventListener("message", (event) => {
      let frame;
      try { frame = JSON.parse(event.data); } catch { return; }
      if (frame.type === "hello") {
        attempts = 0;
        stopPolling();
        document.documentElement.dataset.personalSocket = "open";
        onOpen?.();  // notices sent while the socket was down are lost: catch up once
      } else if (frame.type === "notice") {
        onNotice(frame);
      }
    });
    socket.addEventListener("close", (event) => {
      document.documentElement.dataset.personalSocket = "closed";
      startPolling();
      if (event.code === 4403) return;  // signed out: polling alone
      attempts += 1;
      setTimeout(connect, Math.min(30000, 500 * 2 ** attempts));
    });
  }

  startPolling();
  connect();
  return { close: () => { stopPolling(); socket?.close(); } };
}
