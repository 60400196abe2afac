// DNSMON's grids (the canvas is grid-canvas.ts). A DNS or ping measurement's probes × time
// (#/measurements/<id>/grid?start&stop&colour): a cell opens that probe's traceroute to the target nearest that moment,
// one either side, from any public traceroute measurement of the target, or offers to start one from it. Several
// measurements' targets × time (#/grid?msm=1,2,3&start&stop&colour), as DNSMON's servers view: a cell opens that
// measurement's probes at that time. Windows and colours are in the URL: dragging to zoom makes a history entry.
import { api, ApiError, apiKey } from "./api.ts";
import { append, el, utc, viewLink } from "./dom.ts";
import { drawGrid } from "./grid-canvas.ts";
import { navigate, type Route, viewNumber } from "./route.ts";
import type { Measured } from "./series.ts";
import { measurementLink, type TracerouteResult, tracerouteTable } from "./traceroute-view.ts";

type Measurement = { id: number; type: string; af: number; target: string | null; interval: number | null; start_time: number; stop_time: number | null; description: string };
type Result = Measured & { prb_id: number; msm_id: number };

const HELP = "Hover a cell for its numbers; drag across to zoom into that time (back zooms out); click a cell to open it. From the keyboard: arrow keys move between cells, Enter opens one, + and − zoom in and out.";

/** The window a grid shows: the URL's, else the last two hours (all of it if the measurements are younger). */
function windowOf(q: URLSearchParams, ms: Measurement[]): { t0: number; t1: number; step: number } {
  const now = Math.floor(Date.now() / 1000);
  const end = Math.max(...ms.map((m) => Math.min(now, m.stop_time ?? now)));
  const step = Math.min(...ms.map((m) => m.interval ?? 60));
  const t0 = Number(q.get("start")) || Math.max(Math.min(...ms.map((m) => m.start_time)) - step, end - 7200);
  return { t0, t1: Math.max(t0 + 60, Number(q.get("stop")) || end + step), step };
}

/** The colour picker and the page's frame; `go` makes the URL of the same grid with some parameters changed. */
function frame(view: HTMLElement, title: string, colourBy: "rtt" | "loss", go: (p: Record<string, string | number>) => string, extra: Node[]) {
  const colour = el("select", { id: "grid-colour" }, el("option", { value: "rtt" }, "median RTT"), el("option", { value: "loss" }, "share lost"));
  colour.value = colourBy;
  colour.addEventListener("change", () => navigate(go({ colour: colour.value })));
  const status = el("p", { id: "grid-status", role: "status" }, "Loading results…");
  const canvas = el("canvas", { class: "grid", tabindex: "0", role: "img", "aria-describedby": "grid-help" });
  const tip = el("div", { class: "tip", hidden: "" });
  const detail = el("section", { id: "cell-detail", "aria-live": "polite" });
  view.replaceChildren();
  append(view, el("h1", {}, title), ...extra, el("p", { class: "options" }, el("label", { for: colour.id }, "Colour by "), colour), status,
    el("p", { id: "grid-help", class: "help" }, HELP), el("div", { class: "grid-wrap" }, canvas, tip), legend(colourBy), detail);
  return { status, canvas, tip, detail };
}

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
  const { t0, t1, step } = windowOf(route.query, [m]);
  const colourBy = route.query.get("colour") === "loss" ? "loss" : "rtt";
  const go = (next: Record<string, string | number>) => {
    const p = new URLSearchParams({ start: String(t0), stop: String(t1), colour: colourBy });
    for (const [k, v] of Object.entries(next)) p.set(k, String(v));
    return `#/measurements/${m.id}/grid?${p}`;
  };
  const { status, canvas, tip, detail } = frame(view, `Measurement ${m.id}: ${m.type} to ${m.target ?? "each probe's resolver"}, probes × time`, colourBy, go, [
    el("p", {}, viewLink(`#/measurements/${m.id}`, "The measurement's page"), " · ", `${utc(t0)} to ${utc(t1)} · `,
      viewLink(`#/measurements/${m.id}/grid?colour=${colourBy}`, "the last two hours"), " · ",
      viewLink(`#/grid?msm=${m.id}&colour=${colourBy}`, "compare with other measurements (targets × time)")),
  ]);
  let results: Result[];
  try {
    results = await api<Result[]>(`/api/v2/measurements/${m.id}/results/?start=${t0}&stop=${t1 - 1}`);
  } catch (e) {
    status.replaceChildren(el("span", { class: "error" }, `Could not load results: ${(e as Error).message}`));
    return;
  }
  if (viewNumber() !== mine) return;
  const rows = [...new Set(results.map((r) => r.prb_id))].sort((a, b) => a - b);
  if (rows.length === 0) { status.textContent = "No results in this window."; return; }
  const { cols } = drawGrid(canvas, tip, {
    results, rows, rowOf: (r) => r.prb_id, label: (p) => `probe ${p}`, t0, t1, step, colour: colourBy,
    open: (probe, at, numbers) => void showCell(m, Number(probe), at, numbers, detail),
    zoom: (start, stop) => navigate(go({ start, stop })),
  });
  status.textContent = `${results.length} results from ${rows.length} probes in ${cols} columns of ${Math.round((t1 - t0) / cols)} s.`;
}

/** Several DNS or ping measurements, a row each (its target), their probes' results together in each cell. */
export async function targetsGrid(route: Route, view: HTMLElement): Promise<void> {
  const mine = viewNumber();
  const ids = (route.query.get("msm") ?? "").split(",").map((s) => s.trim()).filter((s) => /^\d{1,12}$/.test(s)).slice(0, 50);
  const colourBy = route.query.get("colour") === "loss" ? "loss" : "rtt";
  const form = el("form", { class: "options", id: "targets-form" });
  const input = el("input", { id: "targets-msm", name: "msm", value: ids.join(","), size: "40", "aria-describedby": "targets-help" });
  form.append(el("label", { for: input.id }, "Measurements "), input, el("small", { id: "targets-help" }, "ids, comma-separated (DNS or ping)"), el("button", { type: "submit" }, "Show"));
  form.addEventListener("submit", (e) => { e.preventDefault(); navigate(`#/grid?msm=${encodeURIComponent(input.value.replace(/\s/g, ""))}&colour=${colourBy}`); });
  if (ids.length === 0) { view.replaceChildren(el("h1", {}, "Targets × time"), form, el("p", {}, "Name the measurements to compare, one row each.")); return; }
  let ms: Measurement[];
  try {
    ms = await Promise.all(ids.map((id) => api<Measurement>(`/api/v2/measurements/${id}/`)));
  } catch (e) {
    view.replaceChildren(el("h1", {}, "Targets × time"), form, el("p", { class: "error" }, `Could not load them: ${(e as Error).message}`));
    return;
  }
  const wrong = ms.filter((m) => m.type !== "dns" && m.type !== "ping");
  if (wrong.length) { view.replaceChildren(el("h1", {}, "Targets × time"), form, el("p", { class: "error" }, `Only DNS and ping measurements: ${wrong.map((m) => `${m.id} is ${m.type}`).join(", ")}.`)); return; }
  const { t0, t1, step } = windowOf(route.query, ms);
  const go = (next: Record<string, string | number>) => {
    const p = new URLSearchParams({ msm: ids.join(","), start: String(t0), stop: String(t1), colour: colourBy });
    for (const [k, v] of Object.entries(next)) p.set(k, String(v));
    return `#/grid?${p}`;
  };
  const byId = new Map(ms.map((m) => [m.id, m]));
  const { status, canvas, tip } = frame(view, `Targets × time: ${ms.length} measurements`, colourBy, go, [form, el("p", {}, `${utc(t0)} to ${utc(t1)}`)]);
  let results: Result[];
  try {
    results = (await Promise.all(ms.map((m) => api<Result[]>(`/api/v2/measurements/${m.id}/results/?start=${t0}&stop=${t1 - 1}`)))).flat();
  } catch (e) {
    status.replaceChildren(el("span", { class: "error" }, `Could not load results: ${(e as Error).message}`));
    return;
  }
  if (viewNumber() !== mine) return;
  const { cols } = drawGrid(canvas, tip, {
    results, rows: ms.map((m) => m.id), rowOf: (r) => r.msm_id, label: (id) => `${byId.get(Number(id))?.target ?? `each resolver`} (${id})`, t0, t1, step, colour: colourBy,
    // A target's cell opens its measurement's probes at that time: the cell's span, a column either side.
    open: (id, at) => {
      const span = (t1 - t0) / cols;
      navigate(`#/measurements/${id}/grid?start=${Math.floor(at - 1.5 * span)}&stop=${Math.ceil(at + 1.5 * span)}&colour=${colourBy}`);
    },
    zoom: (start, stop) => navigate(go({ start, stop })),
  });
  status.textContent = `${results.length} results of ${ms.length} measurements in ${cols} columns of ${Math.round((t1 - t0) / cols)} s.`;
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
