// DNSMON's grid for a DNS or ping measurement (#/measurements/<id>/grid?start&stop&colour): its probes × time, each
// cell coloured by the median RTT (green to 60 ms, red from 250 ms) or the share lost, at most 20,000 cells. Hover a
// cell for its numbers; drag across the grid to zoom into that time (the window is in the URL: back zooms out);
// click a cell (or Enter on it: the arrow keys move between cells) for that probe's traceroute to the target nearest
// that moment, one either side, from any public traceroute measurement of the target, or to start one from it.
import { api, ApiError, apiKey } from "./api.ts";
import { append, el, utc, viewLink } from "./dom.ts";
import { navigate, onLeave, type Route, viewNumber } from "./route.ts";
import { type Cell, gridOf, lossColour, type Measured, rttColour } from "./series.ts";
import { measurementLink, type TracerouteResult, tracerouteTable } from "./traceroute-view.ts";

type Measurement = { id: number; type: string; af: number; target: string | null; interval: number | null; start_time: number; stop_time: number | null; description: string };
type Result = Measured & { prb_id: number };

/** DNSMON's ceiling: a grid has at most this many cells. */
export const MAX_CELLS = 20_000;
const GUTTER = 72, AXIS = 22;

export async function measurementGrid(id: string, route: Route, view: HTMLElement): Promise<void> {
  const mine = viewNumber();
  view.replaceChildren(el("h1", {}, `Measurement ${id}: grid`), el("p", { role: "status" }, "Loading…"));
  let m: Measurement;
  try {
    m = await api<Measurement>(`/api/v2/measurements/${id}/`);
  } catch (e) {
    view.replaceChildren(el("h1", {}, `Measurement ${id}`), el("p", { class: "error" }, e instanceof ApiError && e.status === 404 ? `There is no measurement ${id}.` : (e as Error).message));
    return;
  }
  if (m.type !== "dns" && m.type !== "ping") {
    view.replaceChildren(el("h1", {}, `Measurement ${m.id}`), el("p", {}, `The grid shows DNS and ping measurements; this one is ${m.type}.`), viewLink(`#/measurements/${m.id}`, "Its page"));
    return;
  }
  // The window: from the URL, else the last two hours of the measurement (all of it if shorter).
  const now = Math.floor(Date.now() / 1000);
  const end = Math.min(now, m.stop_time ?? now);
  const step = m.interval ?? 60;
  const q = route.query;
  const t0 = Number(q.get("start")) || Math.max(m.start_time - step, end - 7200);
  const t1 = Math.max(t0 + 60, Number(q.get("stop")) || end + step);
  const colourBy = q.get("colour") === "loss" ? "loss" : "rtt";
  const link = (next: Record<string, string | number>) => {
    const p = new URLSearchParams({ start: String(t0), stop: String(t1), colour: colourBy });
    for (const [k, v] of Object.entries(next)) p.set(k, String(v));
    return `#/measurements/${m.id}/grid?${p}`;
  };

  const status = el("p", { id: "grid-status", role: "status" }, "Loading results…");
  const colour = el("select", { id: "grid-colour" }, el("option", { value: "rtt" }, "median RTT"), el("option", { value: "loss" }, "share lost"));
  colour.value = colourBy;
  colour.addEventListener("change", () => navigate(link({ colour: colour.value })));
  const canvas = el("canvas", { class: "grid", tabindex: "0", role: "img", "aria-describedby": "grid-help" });
  const tip = el("div", { class: "tip", hidden: "" });
  const detail = el("section", { id: "cell-detail", "aria-live": "polite" });
  view.replaceChildren();
  append(view,
    el("h1", {}, `Measurement ${m.id}: ${m.type} to ${m.target ?? "each probe's resolver"}, probes × time`),
    el("p", {}, viewLink(`#/measurements/${m.id}`, "The measurement's page"), " · ", `${utc(t0)} to ${utc(t1)} · `,
      viewLink(`#/measurements/${m.id}/grid?colour=${colourBy}`, "the last two hours")),
    el("p", { class: "filters" }, el("label", { for: colour.id }, "Colour by "), colour),
    status,
    el("p", { id: "grid-help", class: "help" }, "Hover a cell for its numbers; drag across to zoom into that time (back zooms out); click a cell for the probe's traceroute then. From the keyboard: arrow keys move between cells, Enter opens one, + and − zoom in and out."),
    el("div", { class: "grid-wrap" }, canvas, tip), legend(colourBy), detail);

  let results: Result[];
  try {
    results = await api<Result[]>(`/api/v2/measurements/${m.id}/results/?start=${t0}&stop=${t1 - 1}`);
  } catch (e) {
    status.replaceChildren(el("span", { class: "error" }, `Could not load results: ${(e as Error).message}`));
    return;
  }
  if (viewNumber() !== mine) return;
  const started = performance.now();
  const rows = [...new Set(results.map((r) => r.prb_id))].sort((a, b) => a - b);
  if (rows.length === 0) { status.textContent = "No results in this window."; return; }
  // Columns: one per run where it fits, never more than 20,000 cells, nor thinner than 2 pixels.
  const width = Math.max(320, (canvas.parentElement?.clientWidth ?? 1000) - 2);
  const cols = Math.max(1, Math.min(Math.ceil((t1 - t0) / step), Math.floor(MAX_CELLS / rows.length), Math.floor((width - GUTTER) / 2)));
  const shown = rows.slice(0, MAX_CELLS);
  const cells = gridOf(results, shown, (r) => r.prb_id, t0, t1, cols);
  const cellW = (width - GUTTER) / cols;
  const cellH = Math.max(2, Math.min(18, Math.floor(640 / shown.length)));
  const height = AXIS + cellH * shown.length;
  const colourOf = colourBy === "loss" ? lossColour : rttColour;
  const ctx = canvas.getContext("2d")!;
  const binW = (t1 - t0) / cols;
  // The keyboard's cell: the first probe's, in the newest column with any results.
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
    if (cellH >= 10) shown.forEach((p, r) => ctx.fillText(String(p), 4, AXIS + r * cellH + cellH / 2));
    else ctx.fillText(`${shown.length} probes`, 4, AXIS + 8);
    for (let i = 0; i <= 4; i++) {
      const t = t0 + ((t1 - t0) * i) / 4;
      const x = GUTTER + ((width - GUTTER) * i) / 4;
      // Minutes, or seconds too when the window is under an hour (a one-off's few minutes).
      ctx.fillText(new Date(t * 1000).toISOString().slice(11, t1 - t0 < 3600 ? 19 : 16), Math.min(x, width - (t1 - t0 < 3600 ? 50 : 34)), AXIS / 2);
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
    return `probe ${shown[at.row]}, ${utc(Math.floor(from))} to ${utc(Math.floor(from + binW))}\n` + (c === null ? "no results"
      : `${c.rtt === null ? "no answer" : `median RTT ${c.rtt.toFixed(1)} ms`}, ${(c.lost * 100).toFixed(0)} % lost, ${c.n} result${c.n === 1 ? "" : "s"}`);
  };
  const open = (at: { row: number; col: number }) => {
    cursor = at;
    void showCell(m, shown[at.row]!, t0 + (at.col + 0.5) * binW, describe(at), detail);
  };
  canvas.addEventListener("pointerdown", (e) => { drag = { x0: e.offsetX, x1: e.offsetX }; canvas.setPointerCapture(e.pointerId); });
  canvas.addEventListener("pointermove", (e) => {
    if (drag) { drag.x1 = e.offsetX; if (Math.abs(drag.x1 - drag.x0) > 4) { tip.hidden = true; draw(); return; } }
    const at = cellAt(e.offsetX, e.offsetY);
    if (!at) { tip.hidden = true; return; }
    tip.textContent = describe(at);
    tip.style.left = `${Math.min(e.offsetX + 12, width - 260)}px`; tip.style.top = `${e.offsetY + 12}px`;
    tip.hidden = false;
  });
  canvas.addEventListener("pointerup", (e) => {
    const d = drag;
    drag = null;
    if (d && Math.abs(d.x1 - d.x0) > 4) {
      // Dragged: zoom into the time dragged across (whole seconds, at least a minute).
      const time = (x: number) => t0 + ((Math.max(GUTTER, Math.min(width, x)) - GUTTER) / (width - GUTTER)) * (t1 - t0);
      const a = Math.floor(time(Math.min(d.x0, d.x1))), b = Math.ceil(time(Math.max(d.x0, d.x1)));
      navigate(link({ start: a, stop: Math.max(b, a + 60) }));
      return;
    }
    const at = cellAt(e.offsetX, e.offsetY);
    if (at) { open(at); draw(); }
  });
  canvas.addEventListener("pointerleave", () => { tip.hidden = true; });
  canvas.addEventListener("focus", draw);
  canvas.addEventListener("blur", draw);
  canvas.addEventListener("keydown", (e) => {
    const zoom = (f: number) => {
      const mid = t0 + (cursor.col + 0.5) * binW, half = Math.max(30, ((t1 - t0) * f) / 2);
      navigate(link({ start: Math.floor(mid - half), stop: Math.ceil(mid + half) }));
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
    canvas.setAttribute("aria-label", `Grid of ${shown.length} probes × ${cols} times; at ${describe(cursor).replace("\n", ": ")}`);
    draw();
  });
  const resized = new ResizeObserver(() => draw());
  resized.observe(canvas);
  onLeave(() => resized.disconnect());
  draw();
  canvas.setAttribute("aria-label", `Grid of ${shown.length} probes × ${cols} times of ${m.type} results`);
  // The grid's geometry, for whoever drives it (the browser test finds a result's cell from it).
  Object.assign(canvas.dataset, { rows: shown.join(","), cols: String(cols), t0: String(t0), t1: String(t1), cellW: String(cellW), cellH: String(cellH), gutter: String(GUTTER), axis: String(AXIS) });
  canvas.dataset.cells = String(shown.length * cols);
  canvas.dataset.renderMs = (performance.now() - started).toFixed(1);
  status.textContent = `${results.length} results from ${rows.length} probes in ${cols} columns of ${Math.round(binW)} s.`;
}

function legend(by: "rtt" | "loss"): HTMLElement {
  const swatch = (colour: string, label: string) => el("span", {}, el("span", { class: `swatch cell-${colour}` }), label);
  return el("div", { class: "legend" }, ...(by === "rtt"
    ? [swatch("good", "≤ 60 ms"), swatch("mid", "~155 ms"), swatch("bad", "≥ 250 ms"), swatch("lost", "no answer"), swatch("none", "no results")]
    : [swatch("good", "none lost"), swatch("mid", "half lost"), swatch("bad", "all lost"), swatch("none", "no results")]));
}

/**
 * A cell's story: its numbers, then the probe's traceroute to the target nearest that moment with one either side,
 * from the target's public traceroute measurements; if there is none, a button that starts a one-off from the probe.
 */
async function showCell(m: Measurement, probe: number, at: number, numbers: string, box: HTMLElement): Promise<void> {
  box.replaceChildren(el("h2", {}, "The cell"), el("p", { class: "numbers" }, numbers), el("p", { role: "status" }, "Looking for a traceroute…"));
  if (!m.target) { box.lastChild!.textContent = "This measurement asks each probe's own resolver: there is no one target to trace a route to."; return; }
  let found: TracerouteResult[] = [];
  try {
    const list = await api<{ results: { id: number }[] }>(`/api/v2/measurements/?type=traceroute&target=${encodeURIComponent(m.target)}&page_size=10&sort=-id`);
    const day = 86_400;
    for (const t of list.results) {
      found.push(...await api<TracerouteResult[]>(`/api/v2/measurements/${t.id}/results/?probe_ids=${probe}&start=${Math.floor(at - day)}&stop=${Math.ceil(at + day)}`));
    }
  } catch (e) {
    box.lastChild!.textContent = `Could not look for traceroutes: ${(e as Error).message}`;
    return;
  }
  found = found.sort((a, b) => a.timestamp - b.timestamp);
  if (found.length) {
    const nearest = found.reduce((best, r, i) => (Math.abs(r.timestamp - at) < Math.abs(found[best]!.timestamp - at) ? i : best), 0);
    const around = found.slice(Math.max(0, nearest - 1), nearest + 2);
    box.replaceChildren(el("h2", {}, "The cell"), el("p", { class: "numbers" }, numbers),
      el("h3", {}, `Probe ${probe}'s traceroutes to ${m.target} nearest ${utc(Math.round(at))}`),
      ...around.flatMap((r) => [tracerouteTable(r), el("p", {}, "From ", measurementLink(r), r === found[nearest] ? " (the nearest)" : "")]));
    return;
  }
  const start = el("button", { type: "button", id: "start-traceroute" }, `Trace the route from probe ${probe} to ${m.target} now`);
  const said = el("span", { role: "status" });
  start.disabled = !apiKey();
  start.addEventListener("click", async () => {
    start.disabled = true;
    try {
      const made = await api<{ measurements: number[] }>("/api/v2/measurements/", {
        method: "POST", headers: { "Content-Type": "application/json" },
        body: JSON.stringify({
          definitions: [{ type: "traceroute", af: m.af, target: m.target, description: `From the grid of measurement ${m.id}: probe ${probe} to ${m.target}` }],
          probes: [{ type: "probes", value: String(probe), requested: 1 }], is_oneoff: true,
        }),
      });
      navigate(`#/measurements/${made.measurements[0]}`);
    } catch (e) {
      said.replaceChildren(el("span", { class: "error" }, `Not started: ${(e as Error).message}`));
      start.disabled = false;
    }
  });
  box.replaceChildren(el("h2", {}, "The cell"), el("p", { class: "numbers" }, numbers),
    el("p", {}, `No public traceroute from probe ${probe} to ${m.target} within a day of that moment.`),
    el("p", {}, start, " ", apiKey() ? "(a one-off traceroute, charged to this key's account)" : "Enter an API key (above) to start one.", " ", said));
}
