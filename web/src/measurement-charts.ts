// A ping measurement's charts by place and network, below its RTT chart: LatencyMON's groups (by probe, country or
// network; absolute or relative), CAIDA's median RTT per country (a choropleth with its table) and RTT against
// distance (100 km × 3 ms density, with light-in-fibre's floor drawn), each with its numbers as CSV. The numbers are
// series.ts's; this draws them. Their options are in the page's URL (`group`, `relative`).
import { geoPath } from "d3-geo";
import uPlot from "uplot";
import { api } from "./api.ts";
import { download, el, sized, tableHead } from "./dom.ts";
import { rttMap } from "./rtt-map.ts";
import { countryMedians, distanceDensity, fibreFloorMs, groupSeries, type PingSummary, type ProbeFacts, rttScale } from "./series.ts";
import { fitted, numericCode, world } from "./world.ts";

const PALETTE = ["#10243e", "#b42318", "#1a7f37", "#b7791f", "#6941c6", "#0e7490", "#c11574", "#4a5561"];
const csvOf = (rows: (string | number | null)[][]) => rows.map((r) => r.map((v) => (v === null ? "" : String(v))).join(",")).join("\n") + "\n";

export type ChartOptions = { group: "probe" | "country" | "asn"; relative: boolean; onChange: (o: { group: string; relative: boolean }) => void };

/** LatencyMON's grouped chart: a median line per group over time; re-drawn as results arrive. */
export function groupedLatency(box: HTMLElement, msm: number, bucket: number, o: ChartOptions): (results: PingSummary[], probes: Map<number, ProbeFacts>) => void {
  const by = el("select", { id: "group-by" }, el("option", { value: "country" }, "country"), el("option", { value: "asn" }, "network (ASN)"), el("option", { value: "probe" }, "probe"));
  by.value = o.group;
  const relative = el("input", { type: "checkbox", id: "relative" });
  relative.checked = o.relative;
  const changed = () => o.onChange({ group: by.value, relative: relative.checked });
  by.addEventListener("change", changed);
  relative.addEventListener("change", changed);
  const chartBox = el("div", { class: "chart", id: "group-chart" });
  let last: ReturnType<typeof groupSeries> = { t: [], groups: [] };
  box.replaceChildren(el("h2", { id: "groups" }, "Median RTT by group"),
    el("p", { class: "options" }, el("label", { for: by.id }, "Group by "), by, " ", el("label", { for: relative.id }, relative, "relative to each group's lowest")),
    chartBox,
    el("p", { class: "downloads" }, download(`measurement-${msm}-groups.csv`, "text/csv",
      () => csvOf([["time", ...last.groups.map((g) => `${g.label} ${o.relative ? "ms above lowest" : "median ms"}`)],
        ...last.t.map((t, i) => [new Date(t * 1000).toISOString(), ...last.groups.map((g) => g.values[i] ?? null)])]), "Download the groups' numbers (CSV)")));
  let chart: uPlot | null = null;
  let shape = "";
  return (results, probes) => {
    last = groupSeries(results, probes, o.group, bucket, o.relative);
    chartBox.dataset.groups = last.groups.map((g) => g.label).join(",");
    const data = [last.t, ...last.groups.map((g) => g.values)] as uPlot.AlignedData;
    // A bucket either side of the results (a one-off's lone point sits in minutes, not in uPlot's years).
    const fit = () => chart!.setScale("x", { min: (last.t[0] ?? Date.now() / 1000) - bucket, max: (last.t[last.t.length - 1] ?? Date.now() / 1000) + bucket });
    if (chart && shape === chartBox.dataset.groups) { chart.setData(data); fit(); return; }
    chart?.destroy();
    shape = chartBox.dataset.groups;
    chart = new uPlot({
      width: Math.max(320, chartBox.clientWidth || 800), height: 240, scales: { x: { time: true } },
      tzDate: (ts) => uPlot.tzDate(new Date(ts * 1000), "Etc/UTC"),
      series: [{}, ...last.groups.map((g, i) => ({ label: g.label, stroke: PALETTE[i % PALETTE.length], spanGaps: true }))],
      axes: [{}, { label: o.relative ? "ms above lowest" : "ms" }],
    }, data, chartBox);
    fit();
  };
}

/** The median RTT per country: countries filled by it (capped at 1,000 ms, as CAIDA's), and the table of it. */
export function countryChoropleth(box: HTMLElement, msm: number): (results: PingSummary[], probes: Map<number, ProbeFacts>) => Promise<void> {
  const canvas = el("canvas", { class: "small-map", role: "img", "aria-label": "Map of countries coloured by their median RTT; the table below has the numbers" });
  const table = el("tbody");
  let rows: ReturnType<typeof countryMedians> = [];
  box.replaceChildren(el("h2", { id: "countries" }, "Median RTT per country"), canvas,
    el("table", { id: "country-table" }, tableHead("Country", "Probes", "Median RTT (ms)"), table),
    el("p", { class: "downloads" }, download(`measurement-${msm}-countries.csv`, "text/csv",
      () => csvOf([["country", "probes", "median_rtt_ms"], ...rows.map((r) => [r.country, r.probes, r.median])]), "Download the countries' numbers (CSV)")));
  return async (results, probes) => {
    rows = countryMedians(results, probes);
    table.replaceChildren(...rows.map((r) => el("tr", {}, el("td", {}, r.country), el("td", { class: "num" }, String(r.probes)), el("td", { class: "num" }, r.median.toFixed(1)))));
    const land = await world();
    const byId = new Map(rows.map((r) => [numericCode(r.country), r.median]));
    const w = canvas.clientWidth || 640, h = Math.round(w / 2);
    const ctx = sized(canvas, w, h);
    const path = geoPath(fitted(w, h), ctx);
    for (const f of land.features) {
      const m = byId.get(String(f.id));
      ctx.beginPath(); path(f);
      ctx.fillStyle = m === undefined ? "#f4f1ea" : rttScale(Math.min(1000, m));
      ctx.fill(); ctx.strokeStyle = "#a9b4bf"; ctx.lineWidth = 0.5; ctx.stroke();
    }
    canvas.dataset.countries = String(rows.length);
  };
}

/** RTT against distance: the density of results in 100 km × 3 ms bins, and the floor light in fibre sets. */
export function distanceChart(box: HTMLElement, msm: number): (results: PingSummary[], probes: Map<number, ProbeFacts>) => void {
  const canvas = el("canvas", { class: "density", role: "img", "aria-label": "Density of results by distance and RTT, with the speed of light in fibre drawn as a line" });
  const note = el("p", { class: "help" });
  let last: ReturnType<typeof distanceDensity> | null = null;
  box.replaceChildren(el("h2", { id: "distance" }, "RTT against distance"), note, canvas,
    el("p", { class: "downloads" }, download(`measurement-${msm}-distance.csv`, "text/csv",
      () => csvOf([["distance_km_from", "rtt_ms_from", "results"], ...[...(last?.bins ?? [])].map(([k, n]) => {
        const [d, r] = k.split(",").map(Number);
        return [d! * 100, r! * 3, n];
      })]), "Download the density's numbers (CSV)")));
  return (results, probes) => {
    last = distanceDensity(results, probes);
    note.textContent = last.origin
      ? `Distances from probe ${last.origin.probe}, the one with the lowest RTT (${last.origin.rtt.toFixed(2)} ms): where the target is, is not known, and the nearest probe is its best estimate. The line is light in fibre: no round trip can be faster.`
      : "No answered result from a probe with a location yet.";
    const w = canvas.clientWidth || 640, h = 260, pad = 36;
    const ctx = sized(canvas, w, h);
    ctx.fillStyle = "#fff"; ctx.fillRect(0, 0, w, h);
    const maxKm = Math.max(1000, ...last.points.map((p) => p.km)) * 1.05;
    const maxMs = Math.max(30, ...last.points.map((p) => p.rtt)) * 1.1;
    const x = (km: number) => pad + ((w - pad - 8) * km) / maxKm, y = (ms: number) => h - pad - ((h - pad - 8) * ms) / maxMs;
    const most = Math.max(1, ...last.bins.values());
    for (const [k, n] of last.bins) {
      const [d, r] = k.split(",").map(Number);
      ctx.fillStyle = `rgba(16,36,62,${0.25 + (0.75 * n) / most})`;
      ctx.fillRect(x(d! * 100), y((r! + 1) * 3), Math.max(2, x(100) - x(0)), Math.max(2, y(0) - y(3)));
    }
    ctx.strokeStyle = "#b42318"; ctx.lineWidth = 1.5; ctx.beginPath(); ctx.moveTo(x(0), y(0)); ctx.lineTo(x(maxKm), y(fibreFloorMs(maxKm))); ctx.stroke();
    ctx.strokeStyle = "#4a5561"; ctx.lineWidth = 1; ctx.beginPath(); ctx.moveTo(pad, 8); ctx.lineTo(pad, h - pad); ctx.lineTo(w - 8, h - pad); ctx.stroke();
    ctx.fillStyle = "#1b1f24"; ctx.font = "11px system-ui, sans-serif";
    ctx.fillText(`${Math.round(maxKm).toLocaleString("en")} km`, w - 70, h - pad + 14); ctx.fillText("0", pad - 4, h - pad + 14);
    ctx.fillText(`${Math.round(maxMs)} ms`, 2, 16); ctx.fillText("light in fibre", x(maxKm) - 80, Math.max(20, y(fibreFloorMs(maxKm)) + 14));
    canvas.dataset.points = String(last.points.length);
  };
}

/**
 * Every chart of a ping measurement by place and network, with the facts they need about its probes (asked for once
 * per probe, as new probes' results arrive); `update` takes the results so far and redraws at the next frame.
 */
export function pingCharts(msm: number, bucket: number, q: URLSearchParams, go: (params: URLSearchParams, history: boolean) => void):
  { box: HTMLElement; update: (results: PingSummary[]) => void } {
  const sections = ["groups", "rtt-map", "countries", "distance"].map((id) => el("section", { "aria-labelledby": id === "rtt-map" ? "rtt-map-title" : id }));
  const set = (changes: Record<string, string | null>, history: boolean) => {
    const next = new URLSearchParams(q);
    for (const [k, v] of Object.entries(changes)) if (v === null) next.delete(k); else next.set(k, v);
    go(next, history);
  };
  const group = (["probe", "country", "asn"] as const).find((g) => g === q.get("group")) ?? "country";
  const grouped = groupedLatency(sections[0]!, msm, bucket, {
    group, relative: q.get("relative") === "1",
    onChange: (o) => set({ group: o.group === "country" ? null : o.group, relative: o.relative ? "1" : null }, true),
  });
  const map = rttMap(sections[1]!, msm, Number(q.get("t")) || null, (t) => set({ t: String(t) }, false));
  const countries = countryChoropleth(sections[2]!, msm);
  const distance = distanceChart(sections[3]!, msm);
  const probes = new Map<number, ProbeFacts>();
  let latest: PingSummary[] = [];
  let pending = false;
  const redraw = async () => {
    pending = false;
    const missing = [...new Set(latest.map((r) => r.prb_id))].filter((id) => !probes.has(id));
    for (let i = 0; i < missing.length; i += 200) {
      const page = await api<{ results: ProbeFacts[] }>(`/api/v2/probes/?id__in=${missing.slice(i, i + 200).join(",")}&fields=country_code,asn_v4,geometry&page_size=200`);
      for (const p of page.results) probes.set(p.id, p);
      for (const id of missing.slice(i, i + 200)) if (!probes.has(id)) probes.set(id, { id, country_code: null, asn_v4: null, geometry: null });
    }
    grouped(latest, probes);
    distance(latest, probes);
    await Promise.all([map(latest, probes, bucket), countries(latest, probes)]);
  };
  return {
    box: el("div", { class: "ping-charts" }, ...sections),
    update: (results) => {
      latest = results;
      if (pending) return;
      pending = true;
      requestAnimationFrame(() => void redraw().catch((e: unknown) => { sections[0]!.append(el("p", { class: "error" }, `Could not draw the charts: ${(e as Error).message}`)); }));
    },
  };
}
