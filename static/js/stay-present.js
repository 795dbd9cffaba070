// Keeps a page counted as present in a debate while it is open, as the debate's room is
// (debates/presence.py): a judge who has moved on to the verdict page is still there, so a
// study's judge timeout (judging/crowd.py, free_dropped_seats) leaves their seat alone. It opens
// the room's socket and leaves its frames unread; a dropped socket is opened again.
export function stayPresent(debateId) {
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  let attempts = 0;
  function connect() {
    const socket = new WebSocket(`${scheme}//${location.host}/ws/debates/${debateId}/`);
    socket.addEventListener("open", () => { attempts = 0; });
    socket.addEventListener("close", (event) => {
      if (event.code === 4403) return; // no longer this debate's judge
      attempts += 1;
      setTimeout(connect, Math.min(30000, 500 * 2 ** attempts));
    });
  }
  connect();
}
