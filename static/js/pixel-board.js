// The 28x28 board of an image debate (the MNIST pixel debate), mounted by room.js.
//
// Debaters and observers see the digit, with the revealed pixels outlined in the revealing
// seat's colour. The judge has no image at all (the server never sends it): the board starts
// blank, and each revealed pixel appears with its grey level as the reveal arrives. Rectangles
// are claims and are drawn dashed over the board; revealed pixels are the only evidence.
//
// A debater on turn reveals a pixel by clicking it (or moving the cursor with the arrow keys)
// and pressing Enter or "Reveal"; the speech being written in the composer goes with it.
// "Draw a rectangle" (or the R key) then two corners adds a claim to the next speech.
import { isMyTurn, seatName } from "./debate-state.js";

const SIDE = 28;
export const UNKNOWN_RGB = [43, 49, 64]; // a pixel the judge has not seen: not a grey, so never mistaken for one
const SEAT_COLOURS = { A: "#5b8cff", B: "#ff8a3d" };
const CURSOR_COLOUR = "#ffd400";

export function pixelOf(row, column) {
  return row * SIDE + column;
}

export function rowColumn(pixel) {
  return [Math.floor(pixel / SIDE), pixel % SIDE];
}

// Every reveal in the transcript: [{pixel, value, seat}], in order.
export function revealsOf(state) {
  return state.turns
    .filter((turn) => turn.payload && turn.payload.reveal)
    .map((turn) => ({ pixel: turn.payload.reveal.pixel, value: turn.payload.reveal.value, seat: turn.seat }));
}

// Every rectangle claimed in the transcript: [{rect: [top, left, bottom, right], seat}].
export function rectanglesOf(state) {
  return state.turns.flatMap((turn) => ((turn.payload && turn.payload.rectangles) || [])
    .map((rect) => ({ rect, seat: turn.seat })));
}

// Two corners -> [top, left, bottom, right].
export function normalised([r1, c1], [r2, c2]) {
  return [Math.min(r1, r2), Math.min(c1, c2), Math.max(r1, r2), Math.max(c1, c2)];
}

export function mountPixelBoard(root, { getState, send, draftText }) {
  const section = root.querySelector("[data-pixel-board]");
  if (!section) return null;
  const canvas = section.querySelector("[data-board-canvas]");
  const context = canvas.getContext("2d");
  const budget = Number(section.dataset.revealsPerDebater) || 0;
  const revealEachTurn = section.dataset.revealEachTurn === "1";
  const controls = section.querySelector("[data-board-controls]");
  const revealButton = section.querySelector("[data-board-reveal]");
  const rectButton = section.querySelector("[data-board-rect]");
  const pendingList = section.querySelector("[data-board-pending]");
  const status = section.querySelector("[data-board-status]");
  const budgetLine = section.querySelector("[data-board-budget]");
  let cursor = [14, 14];
  let drawing = false; // drawing a rectangle: waiting for corners
  let anchor = null; // its first corner
  let pendingRects = [];

  const state = () => getState();
  const image = () => (state().hidden && Array.isArray(state().hidden.image) ? state().hidden.image : null);
  const isDebater = () => state().view === "debater";

  function myRevealCount() {
    return revealsOf(state()).filter((r) => r.seat === state().my_seat).length;
  }

  function revealProblem(pixel) {
    const s = state();
    if (!isDebater()) return "Only debaters reveal pixels.";
    if (!isMyTurn(s)) return "It is not your turn.";
    if (myRevealCount() >= budget) return `You have revealed all ${budget} of your pixels.`;
    if (revealsOf(s).some((r) => r.pixel === pixel)) return "That pixel is revealed already.";
    const pic = image();
    if (pic && !pic[Math.floor(pixel / SIDE)][pixel % SIDE]) return "That pixel is black: only nonzero pixels can be revealed.";
    return "";
  }

  // ------------------------------------------------------------ drawing

  function draw() {
    const cell = canvas.width / SIDE;
    const pic = image();
    const reveals = revealsOf(state());
    context.fillStyle = `rgb(${UNKNOWN_RGB.join(",")})`;
    context.fillRect(0, 0, canvas.width, canvas.height);
    if (pic) {
      for (let r = 0; r < SIDE; r += 1) {
        for (let c = 0; c < SIDE; c += 1) {
          const grey = pic[r][c];
          context.fillStyle = `rgb(${grey},${grey},${grey})`;
          context.fillRect(c * cell, r * cell, cell, cell);
        }
      }
    } else { // the judge's blank board: a faint grid over the unknown
      context.strokeStyle = "rgba(255,255,255,0.06)";
      context.lineWidth = 1;
      for (let i = 1; i < SIDE; i += 1) {
        context.beginPath(); context.moveTo(i * cell, 0); context.lineTo(i * cell, canvas.height); context.stroke();
        context.beginPath(); context.moveTo(0, i * cell); context.lineTo(canvas.width, i * cell); context.stroke();
      }
    }
    for (const { pixel, value, seat } of reveals) {
      const [r, c] = rowColumn(pixel);
      context.fillStyle = `rgb(${value},${value},${value})`;
      context.fillRect(c * cell, r * cell, cell, cell);
      outline(r, c, r, c, SEAT_COLOURS[seat] || "#ffffff", 2, []);
    }
    for (const { rect, seat } of rectanglesOf(state())) outline(...rect, SEAT_COLOURS[seat] || "#ffffff", 2, [5, 4]);
    for (const rect of pendingRects) outline(...rect, "#ffffff", 2, [3, 3]);
    if (anchor) outline(...normalised(anchor, cursor), "#ffffff", 1, [2, 2]);
    if (document.activeElement === canvas || drawing) outline(cursor[0], cursor[1], cursor[0], cursor[1], CURSOR_COLOUR, 2, []);
  }

  // A frame drawn on cell edges only (inset by half its width), so cell centres keep their colour.
  function outline(top, left, bottom, right, colour, width, dash) {
    const cell = canvas.width / SIDE;
    context.save();
    context.strokeStyle = colour;
    context.lineWidth = width;
    context.setLineDash(dash);
    context.strokeRect(left * cell + width / 2, top * cell + width / 2,
                       (right - left + 1) * cell - width, (bottom - top + 1) * cell - width);
    context.restore();
  }

  // ------------------------------------------------------------ words: claims, budget, evidence

  function renderText() {
    const s = state();
    const claims = s.seats.filter((seat) => seat.answer !== undefined)
      .map((seat) => `${seatName(s, seat.seat)} claims ${s.question.answers[seat.answer]}`);
    section.querySelector("[data-board-claims]").textContent = claims.join(" · ");
    const reveals = revealsOf(s);
    const evidence = section.querySelector("[data-board-evidence]");
    evidence.replaceChildren(...reveals.map(({ pixel, value, seat }) => {
      const [r, c] = rowColumn(pixel);
      const item = document.createElement("li");
      item.className = `seat-${seat}`;
      item.dataset.pixel = String(pixel);
      item.dataset.value = String(value);
      item.textContent = `Row ${r + 1}, column ${c + 1}: grey ${value} (of 255), revealed by ${seatName(s, seat)}`;
      return item;
    }));
    section.querySelector("[data-board-evidence-empty]").hidden = reveals.length > 0;
    const total = budget * s.seats.filter((seat) => seat.answer !== undefined).length;
    section.querySelector("[data-board-count]").textContent = `${reveals.length} of ${total} pixels revealed`;
    if (!controls) return;
    controls.hidden = !isDebater() || s.status !== "live";
    const left = budget - myRevealCount();
    budgetLine.textContent = revealEachTurn
      ? `Each of your turns reveals one pixel: ${left} of ${budget} left.`
      : `You may reveal ${left} more pixel${left === 1 ? "" : "s"} in this debate (of ${budget}).`;
    const problem = revealProblem(pixelOf(...cursor));
    revealButton.disabled = problem !== "";
    revealButton.textContent = `Reveal row ${cursor[0] + 1}, column ${cursor[1] + 1} and send your turn`;
    if (rectButton) { // the human game only: the AI game has no rectangles
      rectButton.setAttribute("aria-pressed", drawing ? "true" : "false");
      rectButton.textContent = drawing ? (anchor ? "Now pick the opposite corner" : "Pick a first corner (Esc cancels)") : "Draw a rectangle";
    }
    pendingList.replaceChildren(...pendingRects.map((rect, i) => {
      const item = document.createElement("li");
      item.textContent = `Rectangle rows ${rect[0] + 1}–${rect[2] + 1}, columns ${rect[1] + 1}–${rect[3] + 1} `;
      const remove = document.createElement("button");
      remove.type = "button";
      remove.className = "link";
      remove.textContent = "remove";
      remove.addEventListener("click", () => { pendingRects.splice(i, 1); render(); });
      item.append(remove);
      return item;
    }));
  }

  function describeCursor() {
    const [r, c] = cursor;
    const pixel = pixelOf(r, c);
    const pic = image();
    const revealed = revealsOf(state()).find((x) => x.pixel === pixel);
    let text = `Row ${r + 1}, column ${c + 1}`;
    if (pic) text += `, grey ${pic[r][c]}`;
    if (revealed) text += `, revealed by ${seatName(state(), revealed.seat)}${pic ? "" : ` (grey ${revealed.value})`}`;
    else if (!pic) text += ", not revealed";
    if (anchor) text += `; rectangle from row ${anchor[0] + 1}, column ${anchor[1] + 1}`;
    return text;
  }

  function say(text) {
    status.textContent = text;
  }

  function render() {
    draw();
    renderText();
  }

  // ------------------------------------------------------------ actions

  function reveal() {
    const pixel = pixelOf(...cursor);
    const problem = revealProblem(pixel);
    if (problem) { say(problem); return; }
    const [row, column] = rowColumn(pixel);
    const draft = draftText();
    // With nothing written the transcript still says what happened, in the tree search debaters' words.
    const text = draft.trim() ? draft : `I reveal the pixel at row ${row + 1}, column ${column + 1}.`;
    const message = { type: "speech", text, reveal: pixel };
    if (pendingRects.length) message.rectangles = pendingRects;
    pendingRects = [];
    send(message);
    say(`Revealing row ${cursor[0] + 1}, column ${cursor[1] + 1}: your turn is sent.`);
    render();
  }

  function corner() {
    if (!anchor) {
      anchor = [...cursor];
      say(`First corner at row ${cursor[0] + 1}, column ${cursor[1] + 1}. Move to the opposite corner and press Enter.`);
    } else {
      const rect = normalised(anchor, cursor);
      pendingRects.push(rect);
      anchor = null;
      drawing = false;
      say(`Rectangle added to your next speech: rows ${rect[0] + 1} to ${rect[2] + 1}, columns ${rect[1] + 1} to ${rect[3] + 1}.`);
    }
    render();
  }

  function toggleDrawing() {
    drawing = !drawing;
    anchor = null;
    say(drawing ? "Drawing a rectangle: pick its first corner." : "Rectangle cancelled.");
    render();
  }

  function moveTo(row, column) {
    cursor = [Math.max(0, Math.min(SIDE - 1, row)), Math.max(0, Math.min(SIDE - 1, column))];
    say(describeCursor());
    render();
  }

  const MOVES = { ArrowUp: [-1, 0], ArrowDown: [1, 0], ArrowLeft: [0, -1], ArrowRight: [0, 1] };
  canvas.addEventListener("keydown", (event) => {
    if (MOVES[event.key]) {
      event.preventDefault();
      const step = event.shiftKey ? 4 : 1;
      moveTo(cursor[0] + MOVES[event.key][0] * step, cursor[1] + MOVES[event.key][1] * step);
    } else if (event.key === "Enter" || event.key === " ") {
      event.preventDefault();
      if (drawing) corner();
      else if (isDebater()) reveal();
      else say(describeCursor());
    } else if ((event.key === "r" || event.key === "R") && rectButton && controls && !controls.hidden) {
      event.preventDefault();
      toggleDrawing();
    } else if (event.key === "Escape" && drawing) {
      event.preventDefault();
      toggleDrawing();
    }
  });
  canvas.addEventListener("focus", () => { say(describeCursor()); render(); });
  canvas.addEventListener("blur", render);
  canvas.addEventListener("click", (event) => {
    const box = canvas.getBoundingClientRect();
    const column = Math.floor(((event.clientX - box.left) / box.width) * SIDE);
    const row = Math.floor(((event.clientY - box.top) / box.height) * SIDE);
    canvas.focus();
    moveTo(row, column);
    if (drawing) corner();
  });
  if (revealButton) revealButton.addEventListener("click", reveal);
  if (rectButton) rectButton.addEventListener("click", toggleDrawing);

  // Rectangles drawn so far go with the next speech sent from the composer (and then are cleared).
  function claims() {
    if (!pendingRects.length) return {};
    const rectangles = pendingRects;
    pendingRects = [];
    render();
    return { rectangles };
  }

  render();
  return { render, claims };
}
