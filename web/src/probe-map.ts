// The probe map (#/probes): every probe with a location, binned in hexagons at the current zoom (as RIPE Atlas's
// probe map does), coloured by how many are connected; hover for the counts and the AS diversity of a bin, click a
// lone probe for its page or a bin to zoom into it. Connections and disconnections arrive live from the result
// stream's probe status. Filters (country, ASN, status, tag) and the view (zoom, centre) live in the URL. Drawn on a
// canvas with d3-geo over Natural Earth's countries, served by the edge itself.
import { geoNaturalEarth1, geoPath, type GeoProjection } from "d3-geo";
import { hexbin as d3hexbin } from "d3-hexbin";
import { api, type Probe, subscribe } from "./api.ts";
import { el, tableHead, viewLink } from "./dom.ts";
import { navigate, onLeave, type Route, viewNumber } from "./route.ts";
import { world } from "./world.ts";

const FILTERS = [
  { name: "country_code", label: "Country", placeholder: "NL" },
  { name: "asn_v4", label: "ASN", placeholder: "3333" },
  { name: "tags", label: "Tag", placeholder: "system-ipv6-works" },
] as const;
const STATUSES: [string, string][] = [["", "any"], ["1", "Connected"], ["2", "Disconnected"], ["3", "Abandoned"]];
const BIN_RADIUS = 14;


/**
 * What the map reads of a probe, from /api/v2/probes/points/ in one answer (15,000 probes as Atlas's 500-probe pages
 * of whole objects took 31 requests and missed the one-second first render: bench:web).
 */
type MapProbe = Pick<Probe, "id" | "geometry" | "asn_v4"> & { status: { id: number; name: string } };
export type Point = [id: number, longitude: number | null, latitude: number | null, status: number, asn_v4: number | null, country_code: string | null];
const STATUS_NAMES: Record<number, string> = { 0: "Never Connected", 1: "Connected", 2: "Disconnected", 3: "Abandoned", 4: "Written Off" };

async function mapProbes(params: URLSearchParams): Promise<MapProbe[]> {
  const { points } = await api<{ points: Point[] }>(`/api/v2/probes/points/?${params}`);
  return points.map(([id, lon, lat, status, asn]) => ({
    id, asn_v4: asn, status: { id: status, name: STATUS_NAMES[status] ?? String(status) },
    geometry: lon === null || lat === null ? null : { type: "Point", coordinates: [lon, lat] },
  }));
}
/** The list under the map: its first probes, whole. */
const LISTED = 100;

/** A bin's numbers: how many probes are up and down, and how diverse their networks are (Simpson's index, 0–1). */
export function binSummary(probes: MapProbe[]): { total: number; connected: number; disconnected: number; asns: number; simpson: number } {
  const byAsn = new Map<string, number>();
  for (const p of probes) byAsn.set(String(p.asn_v4 ?? "unknown"), (byAsn.get(String(p.asn_v4 ?? "unknown")) ?? 0) + 1);
  const n = probes.length;
  // Simpson's diversity: the chance two probes picked at random are in different ASes (Atlas's map shows it).
  const same = n > 1 ? [...byAsn.values()].reduce((s, k) => s + k * (k - 1), 0) / (n * (n - 1)) : 1;
  return {
    total: n, connected: probes.filter((p) => p.status.id === 1).length, disconnected: probes.filter((p) => p.status.id !== 1).length,
    asns: [...byAsn.keys()].filter((k) => k !== "unknown").length, simpson: 1 - same,
  };
}

export async function probeMap(route: Route, view: HTMLElement): Promise<void> {
  const q = route.query;
  const mine = viewNumber();
  const filters = el("form", { class: "filters", role: "search", "aria-label": "Filter probes" });
  for (const f of FILTERS) {
    filters.append(el("label", {}, f.label, el("input", { name: f.name, value: q.get(f.name) ?? "", placeholder: f.placeholder })));
  }
  const status = el("select", { name: "status" });
  for (const [v, label] of STATUSES) {
    const o = el("option", { value: v }, label);
    if ((q.get("status") ?? "") === v) o.selected = true;
    status.append(o);
  }
  filters.append(el("label", {}, "Status", status), el("button", { type: "submit" }, "Filter"));
  filters.addEventListener("submit", (e) => {
    e.preventDefault();
    const next = new URLSearchParams();
    for (const [k, v] of new FormData(filters)) if (String(v).trim()) next.set(k, String(v).trim());
    navigate(`#/probes?${next}`);
  });

  const summary = el("p", { id: "probe-count", role: "status" }, "Loading probes…");
  const live = el("p", { id: "live", "data-live": "off" }, "Live status: connecting…");
  const canvas = el("canvas", { class: "map", tabindex: "0", role: "img", "aria-label": "Map of probes; arrow keys pan, + and - zoom, n and p bring the next or previous bin under the crosshair, Enter opens (or picks) it" });
  const tip = el("div", { class: "tip", hidden: "" });
  const legend = el("div", { class: "legend" },
    el("span", {}, el("span", { class: "swatch up" }), "all connected"), el("span", {}, el("span", { class: "swatch mixed" }), "some connected"),
    el("span", {}, el("span", { class: "swatch down" }), "none connected"));
  const list = el("div");
  // Measuring from what is shown: the filter's country or network as a probe source, or probes picked on the map.
  const source = q.get("asn_v4") ? `asn:${q.get("asn_v4")}` : q.get("country_code") ? `country:${q.get("country_code")}` : "area:WW";
  const pickMode = el("input", { type: "checkbox", id: "pick-mode" });
  const picked = new Set<number>();
  const pickedLine = el("span", { id: "picked", role: "status" });
  const measure = el("p", { class: "measure-from" },
    viewLink(`#/measurements/new?source=${encodeURIComponent(`${source}:10`)}`, q.get("asn_v4") || q.get("country_code") ? "Measure from probes like these" : "Measure from probes worldwide"),
    " · ", el("label", { for: "pick-mode" }, pickMode, "Pick probes on the map (click a bin to add or remove its probes)"), " ", pickedLine);
  view.replaceChildren(el("h1", {}, "Probes"), filters, summary, live, measure, el("div", { class: "map-wrap" }, canvas, tip), legend, list);
  const showPicked = () => {
    const ids = [...picked].slice(0, 1000);
    pickedLine.dataset.count = String(picked.size);
    pickedLine.replaceChildren(...(picked.size === 0 ? [] : [`${picked.size} picked: `,
      viewLink(`#/measurements/new?probes=${ids.join(",")}`, `Measure from ${picked.size === 1 ? "it" : picked.size > 1000 ? "the first 1,000" : `these ${picked.size}`}`)]));
  };

  const params = new URLSearchParams();
  for (const name of ["country_code", "asn_v4", "status", "tags"]) if (q.get(name)) params.set(name, q.get(name)!);
  // The countries, the map's probes and the list's are asked for at once; the map is drawn when the first two are in.
  const countries = world();
  const listing = api<{ results: Probe[] }>(`/api/v2/probes/?${params}&page_size=${LISTED}`).then((r) => r.results);
  let probes: MapProbe[];
  try {
    probes = await mapProbes(params);
  } catch (e) {
    summary.replaceChildren(el("span", { class: "error" }, `Could not list probes: ${(e as Error).message}`));
    return;
  }
  const located = probes.filter((p) => p.geometry);
  const listedById = new Map<number, Probe>();
  const showList = () => {
    list.replaceChildren(probeTable([...listedById.values()]));
    if (probes.length > LISTED) list.append(el("p", {}, `The first ${LISTED} of ${probes.length} are listed; filter to narrow them.`));
  };
  const counts = () => {
    const connected = probes.filter((p) => p.status.id === 1).length;
    summary.dataset.count = String(probes.length);
    summary.replaceChildren(`${probes.length} probe${probes.length === 1 ? "" : "s"} (${connected} connected)` +
      (located.length < probes.length ? `; ${probes.length - located.length} without a location are not on the map` : ""));
    showList();
  };
  counts();
  listing.then((rows) => {
    // Live status that came in meanwhile wins over the list's older word.
    for (const p of rows) {
      const live = byId.get(p.id)?.status;
      listedById.set(p.id, live && live.id !== p.status.id ? { ...p, status: { ...p.status, ...live } } : p);
    }
    showList();
  }, (e: unknown) => list.replaceChildren(el("p", { class: "error" }, `Could not list probes: ${(e as Error).message}`)));
  const byId = new Map(probes.map((p) => [p.id, p]));

  const land = await countries;
  if (viewNumber() !== mine) return;  // the user moved on while it loaded: open nothing more
  // The view: zoom k (1 = the whole world) and the centre [lon, lat], from the URL.
  let k = Math.min(64, Math.max(1, Number(q.get("z")) || 1));
  let centre = (q.get("c") ?? "0,10").split(",").map(Number) as [number, number];
  if (centre.length !== 2 || !centre.every(Number.isFinite)) centre = [0, 10];

  const ctx = canvas.getContext("2d")!;
  let projection: GeoProjection = geoNaturalEarth1();
  let bins: (ReturnType<ReturnType<typeof d3hexbin<MapProbe>>>[number])[] = [];

  const draw = () => {
    const dpr = window.devicePixelRatio || 1;
    const w = canvas.clientWidth, h = canvas.clientHeight;
    canvas.width = w * dpr; canvas.height = h * dpr;
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    projection = geoNaturalEarth1().fitSize([w, h], { type: "Sphere" });
    projection.scale(projection.scale() * k);
    const [cx, cy] = projection(centre) ?? [w / 2, h / 2];
    const [tx, ty] = projection.translate();
    projection.translate([tx + w / 2 - cx, ty + h / 2 - cy]);
    const path = geoPath(projection, ctx);
    ctx.clearRect(0, 0, w, h);
    ctx.beginPath(); path({ type: "Sphere" }); ctx.fillStyle = "#dde7f0"; ctx.fill();
    ctx.beginPath(); path(land); ctx.fillStyle = "#f4f1ea"; ctx.fill(); ctx.strokeStyle = "#a9b4bf"; ctx.lineWidth = 0.5; ctx.stroke();
    const hex = d3hexbin<MapProbe>().x((p) => projection(p.geometry!.coordinates)![0]).y((p) => projection(p.geometry!.coordinates)![1]).radius(BIN_RADIUS);
    bins = hex(located);
    for (const b of bins) {
      const s = binSummary(b);
      ctx.beginPath();
      ctx.arc(b.x, b.y, Math.min(BIN_RADIUS, 3 + 2 * Math.sqrt(s.total)), 0, 2 * Math.PI);
      ctx.fillStyle = s.connected === s.total ? "#1a7f37" : s.connected === 0 ? "#b42318" : "#b7791f";
      ctx.globalAlpha = 0.85; ctx.fill(); ctx.globalAlpha = 1;
      const chosen = picked.size > 0 && b.some((p) => picked.has(p.id));
      ctx.strokeStyle = chosen ? "#10243e" : "#fff"; ctx.lineWidth = chosen ? 3 : 1; ctx.stroke();
    }
    canvas.dataset.bins = String(bins.length);
    if (document.activeElement === canvas) {
      // From the keyboard, the bin under the crosshair is the one Enter acts on.
      const cx = canvas.clientWidth / 2, cy = canvas.clientHeight / 2;
      ctx.strokeStyle = "#e08a00"; ctx.lineWidth = 2; ctx.beginPath();
      ctx.moveTo(cx - 10, cy); ctx.lineTo(cx + 10, cy); ctx.moveTo(cx, cy - 10); ctx.lineTo(cx, cy + 10); ctx.stroke();
    }
  };

  const binAt = (x: number, y: number) => bins.find((b) => (b.x - x) ** 2 + (b.y - y) ** 2 <= BIN_RADIUS ** 2);
  /** The view into the URL, without a history entry per pan step. */
  const keepView = () => {
    const next = new URLSearchParams(q);
    next.set("z", String(Math.round(k * 100) / 100));
    next.set("c", centre.map((v) => v.toFixed(2)).join(","));
    history.replaceState(null, "", `#/probes?${next}`);
  };
  const zoomAt = (factor: number, x: number, y: number) => {
    const at = projection.invert?.([x, y]);
    k = Math.min(64, Math.max(1, k * factor));
    if (at) centre = [at[0] + (centre[0] - at[0]) / factor, at[1] + (centre[1] - at[1]) / factor];
    draw(); keepView();
  };
  const panBy = (dx: number, dy: number) => {
    const w = canvas.clientWidth, h = canvas.clientHeight;
    const at = projection.invert?.([w / 2 - dx, h / 2 - dy]);
    if (at && at.every(Number.isFinite)) centre = at;
    draw(); keepView();
  };

  type Bin = (typeof bins)[number];
  const showTip = (b: Bin, x: number, y: number) => {
    const s = binSummary(b);
    tip.textContent = `${s.total} probe${s.total === 1 ? "" : "s"}: ${s.connected} connected, ${s.disconnected} not\n${s.asns} AS${s.asns === 1 ? "" : "es"}, diversity ${s.simpson.toFixed(2)}` +
      (pickMode.checked ? "\nclick to pick or put back" : s.total === 1 ? `\nprobe ${b[0]!.id} — click for its page` : "\nclick to zoom in");
    tip.style.left = `${x + 12}px`; tip.style.top = `${y + 12}px`;
    tip.hidden = false;
  };
  /** A click on a bin (or Enter on the one under the crosshair): pick it, open its lone probe, or zoom into it. */
  const actOn = (b: Bin) => {
    if (pickMode.checked) {
      // A bin already picked whole is put back; otherwise all of it is picked.
      const all = b.every((p) => picked.has(p.id));
      for (const p of b) if (all) picked.delete(p.id); else picked.add(p.id);
      showPicked();
      draw();
      return;
    }
    if (b.length === 1) navigate(`#/probes/${b[0]!.id}`);
    else zoomAt(4, b.x, b.y);
  };
  /** The bin under the crosshair, said in the tip, for the keyboard. */
  const atCentre = () => {
    const cx = canvas.clientWidth / 2, cy = canvas.clientHeight / 2;
    // The nearest bin within one and a half of its radius: panning moves probes, and the hexagons they fall in, under
    // a crosshair that stays put.
    const d2 = (b: Bin) => (b.x - cx) ** 2 + (b.y - cy) ** 2;
    const b = bins.filter((x) => d2(x) <= (1.5 * BIN_RADIUS) ** 2).sort((x, y) => d2(x) - d2(y))[0];
    if (b) showTip(b, cx, cy); else tip.hidden = true;
    return b;
  };
  let drag: { x: number; y: number; moved: boolean } | null = null;
  canvas.addEventListener("pointerdown", (e) => { drag = { x: e.offsetX, y: e.offsetY, moved: false }; canvas.setPointerCapture(e.pointerId); });
  canvas.addEventListener("pointermove", (e) => {
    if (drag && (Math.abs(e.offsetX - drag.x) + Math.abs(e.offsetY - drag.y) > 3)) {
      panBy(e.offsetX - drag.x, e.offsetY - drag.y);
      drag = { x: e.offsetX, y: e.offsetY, moved: true };
      return;
    }
    const b = binAt(e.offsetX, e.offsetY);
    if (!b) { tip.hidden = true; return; }
    showTip(b, e.offsetX, e.offsetY);
  });
  canvas.addEventListener("pointerup", (e) => {
    const wasDrag = drag?.moved;
    drag = null;
    if (wasDrag) return;
    const b = binAt(e.offsetX, e.offsetY);
    if (b) actOn(b);
  });
  canvas.addEventListener("pointerleave", () => { tip.hidden = true; });
  canvas.addEventListener("wheel", (e) => { e.preventDefault(); zoomAt(e.deltaY < 0 ? 1.5 : 1 / 1.5, e.offsetX, e.offsetY); }, { passive: false });
  canvas.addEventListener("keydown", (e) => {
    const w = canvas.clientWidth, h = canvas.clientHeight, step = 60;
    // n and p bring the next or previous bin (left to right) under the crosshair: its probes' middle, not its
    // hexagon's, so that it is still the bin there once the map is binned again.
    const hop = (dir: 1 | -1) => {
      const middle = (b: Bin) => {
        const xy = b.map((p) => projection(p.geometry!.coordinates)!);
        return [xy.reduce((a, [x]) => a + x, 0) / xy.length, xy.reduce((a, [, y]) => a + y, 0) / xy.length] as const;
      };
      const order = [...bins].map((b) => middle(b)).sort((a, b) => a[0] - b[0] || a[1] - b[1]);
      const here = order.findIndex(([x, y]) => (x - w / 2) ** 2 + (y - h / 2) ** 2 <= (1.5 * BIN_RADIUS) ** 2);
      const next = order[here < 0 ? (dir === 1 ? order.findIndex(([x]) => x > w / 2) : order.findLastIndex(([x]) => x < w / 2)) : here + dir];
      if (next) panBy(w / 2 - next[0], h / 2 - next[1]);
    };
    const moves: Record<string, () => void> = {
      ArrowLeft: () => panBy(step, 0), ArrowRight: () => panBy(-step, 0), ArrowUp: () => panBy(0, step), ArrowDown: () => panBy(0, -step),
      "+": () => zoomAt(1.5, w / 2, h / 2), "=": () => zoomAt(1.5, w / 2, h / 2), "-": () => zoomAt(1 / 1.5, w / 2, h / 2),
      n: () => hop(1), p: () => hop(-1),
      Enter: () => { const b = atCentre(); if (b) actOn(b); }, " ": () => { const b = atCentre(); if (b) actOn(b); },
    };
    const move = moves[e.key];
    if (!move) return;
    e.preventDefault();
    move();
    if (e.key !== "Enter" && e.key !== " ") atCentre();
  });
  canvas.addEventListener("focus", draw);
  canvas.addEventListener("blur", () => { tip.hidden = true; draw(); });
  const resized = new ResizeObserver(() => draw());
  resized.observe(canvas);
  onLeave(() => resized.disconnect());
  draw();

  // Live: the stream's probe status moves a probe between connected and not, on the map, the counts and the list.
  subscribe({ streamType: "probestatus" }, (event, payload) => {
    if (event === "atlas_subscribed") { live.dataset.live = "on"; live.textContent = "Live status: on"; return; }
    if (event === "closed") { live.dataset.live = "off"; live.textContent = "Live status: off (reload to resume)"; return; }
    const body = payload as { prb_id?: number; event?: string; timestamp?: number };
    if (event !== "atlas_probestatus" || !body.prb_id) return;
    const p = byId.get(body.prb_id);
    if (!p) return;
    const up = body.event === "connect";
    p.status = { id: up ? 1 : 2, name: up ? "Connected" : "Disconnected" };
    const row = listedById.get(p.id);
    if (row) row.status = { ...p.status, since: body.timestamp ? new Date(body.timestamp * 1000).toISOString() : row.status.since };
    counts();
    draw();
  });
}

function probeTable(probes: Probe[]): HTMLTableElement {
  return el("table", { "aria-label": "Probes" },
    tableHead("Probe", "Description", "Status", "Country", "ASN", "Tags"),
    el("tbody", {}, ...probes.map((p) => el("tr", {},
      el("td", {}, viewLink(`#/probes/${p.id}`, String(p.id))),
      el("td", {}, p.description),
      el("td", {}, p.status.name),
      el("td", {}, p.country_code ?? "—"),
      el("td", {}, p.asn_v4 === null ? "—" : String(p.asn_v4)),
      el("td", {}, p.tags.map((t) => t.slug).join(", "))))));
}
