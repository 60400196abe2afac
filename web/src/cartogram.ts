// The cartogram (#/cartogram?by=probes|networks|results[&msm=<id>]): each country drawn at a size standing for what
// the network has there — its probes, their networks (distinct ASNs), or a measurement's results — as an Olson
// non-contiguous cartogram: every country keeps its shape and place and is scaled about its centre so that its area
// is in proportion to its value per area of the densest, which keeps its own size. The numbers are in a table beside
// it and as CSV.
import { geoPath } from "d3-geo";
import { api } from "./api.ts";
import { download, el, sized, tableHead, viewLink } from "./dom.ts";
import type { Point } from "./probe-map.ts";
import { navigate, type Route, viewNumber } from "./route.ts";
import { fitted, numericCode, world } from "./world.ts";

const MEASURES = [["probes", "probes"], ["networks", "networks (ASNs)"], ["results", "a measurement's results"]] as const;
type Measure = (typeof MEASURES)[number][0];

/** Each country's value (two-letter code → value): probes, distinct ASNs, or results of a measurement. */
export function countByCountry(points: Point[], by: Measure, results?: { prb_id: number }[]): Map<string, number> {
  const country = new Map(points.map((p) => [p[0], p[5]]));
  const out = new Map<string, number>();
  if (by === "results") {
    for (const r of results ?? []) {
      const cc = country.get(r.prb_id);
      if (cc) out.set(cc, (out.get(cc) ?? 0) + 1);
    }
    return out;
  }
  const asns = new Map<string, Set<number>>();
  for (const [, , , , asn, cc] of points) {
    if (!cc) continue;
    if (by === "probes") out.set(cc, (out.get(cc) ?? 0) + 1);
    else if (asn !== null) asns.set(cc, (asns.get(cc) ?? new Set()).add(asn));
  }
  if (by === "networks") for (const [cc, s] of asns) out.set(cc, s.size);
  return out;
}

export async function cartogram(route: Route, view: HTMLElement): Promise<void> {
  const mine = viewNumber();
  const by: Measure = (MEASURES.map((m) => m[0]) as string[]).includes(route.query.get("by") ?? "") ? route.query.get("by") as Measure : "probes";
  const msm = route.query.get("msm") ?? "";
  const picker = el("form", { class: "options", id: "cartogram-form" });
  const select = el("select", { id: "cartogram-by", name: "by" }, ...MEASURES.map(([v, label]) => el("option", { value: v }, label)));
  select.value = by;
  const msmInput = el("input", { id: "cartogram-msm", name: "msm", inputmode: "numeric", size: "10", value: msm });
  picker.append(el("label", { for: select.id }, "Countries sized by "), select, el("label", { for: msmInput.id }, "measurement"), msmInput, el("button", { type: "submit" }, "Show"));
  picker.addEventListener("submit", (e) => {
    e.preventDefault();
    navigate(`#/cartogram?by=${select.value}${select.value === "results" && msmInput.value.trim() ? `&msm=${encodeURIComponent(msmInput.value.trim())}` : ""}`);
  });
  const status = el("p", { role: "status", id: "cartogram-status" }, "Loading…");
  const canvas = el("canvas", { class: "small-map", id: "cartogram", role: "img", "aria-label": `Countries sized by their ${by}; the table below has the numbers` });
  const table = el("tbody");
  view.replaceChildren(el("h1", {}, "Cartogram"), picker, status, el("div", { class: "map-wrap" }, canvas),
    el("table", { id: "cartogram-table" }, tableHead("Country", by === "results" ? "Results" : by === "networks" ? "Networks (ASNs)" : "Probes"), table));

  let values: Map<string, number>;
  try {
    const { points } = await api<{ points: Point[] }>("/api/v2/probes/points/");
    let results: { prb_id: number }[] | undefined;
    if (by === "results") {
      if (!/^\d+$/.test(msm)) { status.textContent = "Enter the id of the measurement whose results size the countries."; return; }
      results = await api<{ prb_id: number }[]>(`/api/v2/measurements/${msm}/results/`);
    }
    values = countByCountry(points, by, results);
  } catch (e) {
    status.replaceChildren(el("span", { class: "error" }, `Could not count: ${(e as Error).message}`));
    return;
  }
  if (viewNumber() !== mine) return;
  const rows = [...values].sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1));
  table.replaceChildren(...rows.map(([cc, n]) => el("tr", {}, el("td", {}, viewLink(`#/probes?country_code=${cc}`, cc)), el("td", { class: "num" }, n.toLocaleString("en")))));
  view.append(el("p", { class: "downloads" }, download(`cartogram-${by}.csv`, "text/csv", () => ["country,value", ...rows.map(([cc, n]) => `${cc},${n}`)].join("\n") + "\n", "Download the numbers (CSV)")));
  status.textContent = `${rows.reduce((a, [, n]) => a + n, 0).toLocaleString("en")} ${by} in ${rows.length} countries.`;

  const land = await world();
  const w = canvas.clientWidth || 800, h = Math.round(w / 2);
  const ctx = sized(canvas, w, h);
  const projection = fitted(w, h);
  const path = geoPath(projection);
  const draw = geoPath(projection, ctx);
  const byId = new Map([...values].map(([cc, n]) => [numericCode(cc), n]));
  // Value per projected area: the densest country keeps its size, the rest shrink about their centres in proportion.
  const shapes = land.features.map((f) => ({ f, value: byId.get(String(f.id)) ?? 0, area: path.area(f), centre: path.centroid(f) }));
  const densest = Math.max(...shapes.filter((s) => s.area > 0).map((s) => s.value / s.area));
  ctx.fillStyle = "#dde7f0"; ctx.fillRect(0, 0, w, h);
  let drawn = 0;
  for (const s of shapes) {
    ctx.beginPath(); draw(s.f); ctx.strokeStyle = "#c5ced8"; ctx.lineWidth = 0.5; ctx.stroke();  // where the country is
    if (!s.value || !s.area || !Number.isFinite(s.centre[0])) continue;
    const k = Math.sqrt(s.value / s.area / densest);
    ctx.save();
    ctx.translate(s.centre[0], s.centre[1]); ctx.scale(k, k); ctx.translate(-s.centre[0], -s.centre[1]);
    ctx.beginPath(); draw(s.f);
    ctx.fillStyle = "#10243e"; ctx.fill();
    ctx.restore();
    drawn++;
  }
  canvas.dataset.countries = String(drawn);
}
