// DNSMON's grid on a canvas: rows × equal time columns of cells coloured by median RTT or share lost (at most 20,000
// cells), row labels, a time axis; hover for a cell's numbers, drag across to pick a time to zoom into, arrow keys
// to move between cells, Enter or a click to open one, + and − to zoom. Used for a measurement's probes × time and for
// several measurements' targets × time (measurement-grid.ts), which say what rows are and what opening a cell does.
import { onLeave } from "./route.ts";
import { type Cell, gridOf, lossColour, type Measured, rttColour } from "./series.ts";
import { utc } from "./dom.ts";

/** DNSMON's ceiling: a grid has at most this many cells. */
export const MAX_CELLS = 20_000;
const GUTTER = 72, AXIS = 22;

export type GridSpec<R extends Measured> = {
  results: R[]; rows: (string | number)[]; rowOf: (r: R) => string | number; label: (row: string | number) => string;
  t0: number; t1: number; step: number; colour: "rtt" | "loss";
  /** A cell opened (clicked, or Enter): its row, and the middle of its time. */
  open: (row: string | number, at: number, numbers: string) => void;
  /** A time range picked by dragging (or + and − from the keyboard). */
  zoom: (start: number, stop: number) => void;
};

/** Draws the grid into `canvas` (its parent sets the width); returns how many columns it has. */
export function drawGrid<R extends Measured>(canvas: HTMLCanvasElement, tip: HTMLElement, g: GridSpec<R>): { cols: number; rows: number } {
  const started = performance.now();
  const { t0, t1 } = g;
  const shown = g.rows.slice(0, MAX_CELLS);
  // Columns: one per run where it fits, never more than 20,000 cells, nor thinner than 2 pixels.
  const width = Math.max(320, (canvas.parentElement?.clientWidth ?? 1000) - 2);
  const cols = Math.max(1, Math.min(Math.ceil((t1 - t0) / g.step), Math.floor(MAX_CELLS / shown.length), Math.floor((width - GUTTER) / 2)));
  const cells = gridOf(g.results, shown, g.rowOf, t0, t1, cols);
  const cellW = (width - GUTTER) / cols;
  const cellH = Math.max(2, Math.min(18, Math.floor(640 / shown.length)));
  const height = AXIS + cellH * shown.length;
  const colourOf = g.colour === "loss" ? lossColour : rttColour;
  const ctx = canvas.getContext("2d")!;
  const binW = (t1 - t0) / cols;
  // The keyboard's cell: the first row's, in the newest column with any results.
  const newest = Math.max(0, ...cells.map((line) => line.findLastIndex((c) => c !== null)));
  let cursor = { row: 0, col: newest };
  let drag: { x0: number; x1: number } | null = null;

  const draw = () => {
    const dpr = window.devicePixelRatio || 1;
    canvas.width = width * dpr; canvas.height = height * dpr;
    canvas.style.width = `${width}px`; canvas.style.height = `${height}px`;
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.fillStyle = "#fff"; ctx.fillRect(0, 0, width, height);
    for (let r = 0; r < shown.length; r++) {
      const line = cells[r]!;
      for (let c = 0; c < cols; c++) {
        ctx.fillStyle = colourOf(line[c]!);
        ctx.fillRect(GUTTER + c * cellW, AXIS + r * cellH, Math.ceil(cellW), cellH);
      }
    }
    ctx.fillStyle = "#1b1f24"; ctx.font = "11px system-ui, sans-serif"; ctx.textBaseline = "middle";
    if (cellH >= 10) shown.forEach((row, r) => ctx.fillText(g.label(row).slice(0, 11), 4, AXIS + r * cellH + cellH / 2));
    else ctx.fillText(`${shown.length} rows`, 4, AXIS + 8);
    const short = t1 - t0 < 3600;
    for (let i = 0; i <= 4; i++) {
      const t = t0 + ((t1 - t0) * i) / 4;
      const x = GUTTER + ((width - GUTTER) * i) / 4;
      // Minutes, or seconds too when the window is under an hour (a one-off's few minutes).
      ctx.fillText(new Date(t * 1000).toISOString().slice(11, short ? 19 : 16), Math.min(x, width - (short ? 50 : 34)), AXIS / 2);
    }
    if (drag) {
      ctx.fillStyle = "rgba(16,36,62,.25)";
      ctx.fillRect(Math.min(drag.x0, drag.x1), AXIS, Math.abs(drag.x1 - drag.x0), height - AXIS);
    }
    if (document.activeElement === canvas) {
      ctx.strokeStyle = "#e08a00"; ctx.lineWidth = 2;
      ctx.strokeRect(GUTTER + cursor.col * cellW, AXIS + cursor.row * cellH, cellW, cellH);
    }
  };
  const cellAt = (x: number, y: number) => {
    const col = Math.floor((x - GUTTER) / cellW), row = Math.floor((y - AXIS) / cellH);
    return col >= 0 && col < cols && row >= 0 && row < shown.length ? { row, col } : null;
  };
  const describe = (at: { row: number; col: number }) => {
    const c: Cell | null = cells[at.row]![at.col]!;
    const from = t0 + at.col * binW;
    return `${g.label(shown[at.row]!)}, ${utc(Math.floor(from))} to ${utc(Math.floor(from + binW))}\n` + (c === null ? "no results"
      : `${c.rtt === null ? "no answer" : `median RTT ${c.rtt.toFixed(1)} ms`}, ${(c.lost * 100).toFixed(0)} % lost, ${c.n} result${c.n === 1 ? "" : "s"}`);
  };
  const open = (at: { row: number; col: number }) => {
    cursor = at;
    g.open(shown[at.row]!, t0 + (at.col + 0.5) * binW, describe(at));
  };
  canvas.onpointerdown = (e) => { drag = { x0: e.offsetX, x1: e.offsetX }; canvas.setPointerCapture(e.pointerId); };
  canvas.onpointermove = (e) => {
    if (drag) { drag.x1 = e.offsetX; if (Math.abs(drag.x1 - drag.x0) > 4) { tip.hidden = true; draw(); return; } }
    const at = cellAt(e.offsetX, e.offsetY);
    if (!at) { tip.hidden = true; return; }
    tip.textContent = describe(at);
    tip.style.left = `${Math.min(e.offsetX + 12, width - 260)}px`; tip.style.top = `${e.offsetY + 12}px`;
    tip.hidden = false;
  };
  canvas.onpointerup = (e) => {
    const d = drag;
    drag = null;
    if (d && Math.abs(d.x1 - d.x0) > 4) {
      // Dragged: zoom into the time dragged across (whole seconds, at least a minute).
      const time = (x: number) => t0 + ((Math.max(GUTTER, Math.min(width, x)) - GUTTER) / (width - GUTTER)) * (t1 - t0);
      const a = Math.floor(time(Math.min(d.x0, d.x1))), b = Math.ceil(time(Math.max(d.x0, d.x1)));
      g.zoom(a, Math.max(b, a + 60));
      return;
    }
    const at = cellAt(e.offsetX, e.offsetY);
    if (at) { open(at); draw(); }
  };
  canvas.onpointerleave = () => { tip.hidden = true; };
  canvas.onfocus = draw;
  canvas.onblur = draw;
  canvas.onkeydown = (e) => {
    const zoom = (f: number) => {
      const mid = t0 + (cursor.col + 0.5) * binW, half = Math.max(30, ((t1 - t0) * f) / 2);
      g.zoom(Math.floor(mid - half), Math.ceil(mid + half));
    };
    const moves: Record<string, () => void> = {
      ArrowLeft: () => { cursor.col = Math.max(0, cursor.col - 1); }, ArrowRight: () => { cursor.col = Math.min(cols - 1, cursor.col + 1); },
      ArrowUp: () => { cursor.row = Math.max(0, cursor.row - 1); }, ArrowDown: () => { cursor.row = Math.min(shown.length - 1, cursor.row + 1); },
      Enter: () => open(cursor), "+": () => zoom(0.5), "=": () => zoom(0.5), "-": () => zoom(2),
    };
    const move = moves[e.key];
    if (!move) return;
    e.preventDefault();
    move();
    canvas.setAttribute("aria-label", `Grid of ${shown.length} rows × ${cols} times; at ${describe(cursor).replace("\n", ": ")}`);
    draw();
  };
  const resized = new ResizeObserver(() => draw());
  resized.observe(canvas);
  onLeave(() => resized.disconnect());
  draw();
  canvas.setAttribute("aria-label", `Grid of ${shown.length} rows × ${cols} times`);
  // The grid's geometry, for whoever drives it (the browser test finds a result's cell from it).
  Object.assign(canvas.dataset, { rows: shown.join(","), cols: String(cols), t0: String(t0), t1: String(t1), cellW: String(cellW), cellH: String(cellH), gutter: String(GUTTER), axis: String(AXIS) });
  canvas.dataset.cells = String(shown.length * cols);
  canvas.dataset.renderMs = (performance.now() - started).toFixed(1);
  return { cols, rows: shown.length };
}
