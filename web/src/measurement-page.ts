// A measurement's page (#/measurements/<id>): what it is, its results arriving live over the result stream, and for
// ping measurements a LatencyMON-style chart of the minimum, median and maximum RTT over time across its probes
// (uPlot), with the chart's numbers as CSV and every result as JSON under it, then the charts by place and network
// (measurement-charts.ts: groups, the RTT map, countries, distance). Traceroutes show each probe's path; DNS and
// ping link to their DNSMON grid. Every type lists its newest results.
import uPlot from "uplot";
import { api, ApiError, apiKey, subscribe } from "./api.ts";
import { append, download, el, facts, tableHead, utc, viewLink } from "./dom.ts";
import { type DnsResult, dnsSummary } from "./dns-answer.ts";
import { pingCharts } from "./measurement-charts.ts";
import { navigate, type Route, viewNumber } from "./route.ts";
import { latencySeries, type PingSummary } from "./series.ts";
import { type TracerouteResult, tracerouteTable } from "./traceroute-view.ts";

/** Atlas's status ids up to Ongoing (0 Specified, 1 Scheduled, 2 Ongoing): a measurement that can still be stopped. */
const STATUS_ONGOING = 2;

type Measurement = {
  id: number; type: string; af: number; target: string; description: string; tags: string[]; interval: number | null; is_oneoff: boolean;
  status: { id: number; name: string }; participant_count: number; start_time: number; stop_time: number | null;
};
type Result = PingSummary & { dst_addr?: string };

export async function measurementPage(id: string, route: Route, view: HTMLElement): Promise<void> {
  if (!/^\d{1,12}$/.test(id)) {
    view.replaceChildren(el("h1", {}, "No such measurement"), el("p", { class: "error" }, `"${id}" is not a measurement id.`));
    return;
  }
  const mine = viewNumber();
  view.replaceChildren(el("h1", {}, `Measurement ${id}`), el("p", { role: "status" }, "Loading…"));
  let m: Measurement;
  try {
    m = await api<Measurement>(`/api/v2/measurements/${id}/`);
  } catch (e) {
    view.replaceChildren(el("h1", {}, `Measurement ${id}`), el("p", { class: "error" }, e instanceof ApiError && e.status === 404 ? `There is no measurement ${id}.` : `Could not load measurement ${id}: ${(e as Error).message}`));
    return;
  }
  const count = el("p", { id: "result-count", role: "status", "data-count": "0" }, "Loading results…");
  const chartBox = el("div", { class: "chart", id: "latency-chart" });
  const table = el("tbody");
  const paths = el("div", { id: "paths-list" });
  const bucket = m.interval ?? 60;
  // LatencyMON's window: the last day of results, and a day further back at a time (`days` in the URL, up to 30), so a
  // measurement that ran for months is not read whole.
  const days = Math.min(30, Math.max(1, Math.floor(Number(route.query.get("days")) || 1)));
  const from = Math.max(m.start_time - 60, Math.floor(Date.now() / 1000) - days * 86_400);
  const further = new URLSearchParams(route.query);
  further.set("days", String(days + 1));
  const windowLine = el("p", { id: "results-window" }, `Results since ${utc(from)}`,
    from > m.start_time - 60 && days < 30 ? el("span", {}, " · ", viewLink(`#/measurements/${m.id}?${further}`, "a day further back")) : null);
  // Options of the charts by place and network go into the URL: a new history entry for a choice, none for scrubbing.
  const charts = m.type === "ping" ? pingCharts(m.id, bucket, route.query, (next, entry) => {
    const hash = `#/measurements/${m.id}${next.size ? `?${next}` : ""}`;
    if (entry) navigate(hash); else history.replaceState(null, "", hash);
  }) : null;
  view.replaceChildren();
  append(view,
    el("h1", {}, `Measurement ${m.id}: ${m.type} to ${m.target}`),
    facts([
      ["Description", m.description || "—"], ["Tags", m.tags.length ? m.tags.join(", ") : "—"], ["Status", m.status.name], ["Kind", m.is_oneoff ? "one-off" : `every ${m.interval} s`],
      ["Address family", `IPv${m.af}`], ["Probes", String(m.participant_count)],
      ["Started", utc(m.start_time)], ["Stopped", utc(m.stop_time, m.status.id > STATUS_ONGOING ? "—" : "not yet")],
    ]),
    stopButton(m),
    windowLine,
    count,
    m.type === "ping" ? el("section", { "aria-labelledby": "latency" }, el("h2", { id: "latency" }, "RTT across probes: minimum, median, maximum"), chartBox) : null,
    charts?.box,
    m.type === "traceroute" ? el("section", { "aria-labelledby": "paths" }, el("h2", { id: "paths" }, "Paths: each probe's newest"), paths) : null,
    m.type === "dns" || m.type === "ping" ? el("p", {}, viewLink(`#/measurements/${m.id}/grid`, "Probes × time grid (DNSMON)"), " · ",
      viewLink(`#/cartogram?by=results&msm=${m.id}`, "Countries sized by its results (cartogram)")) : null,
    el("section", { "aria-labelledby": "results" }, el("h2", { id: "results" }, "Results"),
      el("table", { id: "result-table" }, tableHead("Time (UTC)", "Probe", "Summary"), table)),
  );

  const results: Result[] = [];
  const seen = new Set<string>();
  let chart: uPlot | null = null;
  const csv = () => {
    const s = latencySeries(results, bucket);
    return ["time,probes,min_ms,median_ms,max_ms", ...s.t.map((t, i) => `${new Date(t * 1000).toISOString()},${s.probes[i]},${s.min[i]},${s.median[i]},${s.max[i]}`)].join("\n") + "\n";
  };
  if (m.type === "ping") {
    chartBox.after(el("p", { class: "downloads" },
      download(`measurement-${m.id}-rtt.csv`, "text/csv", csv, "Download the chart's numbers (CSV)"), " ",
      download(`measurement-${m.id}-results.json`, "application/json", () => JSON.stringify(results), "Download every result (JSON)")));
  }
  const summary = (r: Result) => r.type === "ping"
    ? (r.rcvd ? `${r.rcvd}/${r.sent} replies, RTT ${r.min!.toFixed(2)} / ${r.avg!.toFixed(2)} / ${r.max!.toFixed(2)} ms` : `${r.sent} sent, no reply`)
    : r.type === "dns" ? dnsSummary(r as DnsResult)
    : r.dst_addr ? `to ${r.dst_addr}` : r.type;
  const show = () => {
    results.sort((a, b) => a.timestamp - b.timestamp || a.prb_id - b.prb_id);
    count.dataset.count = String(results.length);
    count.textContent = `${results.length} result${results.length === 1 ? "" : "s"}`;
    table.replaceChildren(...results.slice(-200).reverse().map((r) => el("tr", {},
      el("td", {}, utc(r.timestamp)), el("td", {}, viewLink(`#/probes/${r.prb_id}`, String(r.prb_id))), el("td", {}, summary(r)))));
    if (m.type === "traceroute") {
      const newest = new Map<number, Result>();
      for (const r of results) newest.set(r.prb_id, r);  // sorted by time: the last one a probe sent
      paths.replaceChildren(...[...newest.values()].slice(0, 50).map((r) => tracerouteTable(r as unknown as TracerouteResult)));
    }
    if (m.type !== "ping") return;
    charts?.update(results);
    const s = latencySeries(results, bucket);
    const data: uPlot.AlignedData = [s.t, s.min, s.median, s.max];
    if (!chart) {
      chart = new uPlot({
        width: Math.max(320, chartBox.clientWidth || 800), height: 260,
        scales: { x: { time: true } },
        // UTC, as the table and Atlas's results (the browser's zone would put them hours apart).
        tzDate: (ts) => uPlot.tzDate(new Date(ts * 1000), "Etc/UTC"),
        series: [{}, { label: "min (ms)", stroke: "#1a7f37" }, { label: "median (ms)", stroke: "#10243e", width: 2 }, { label: "max (ms)", stroke: "#b42318" }],
        axes: [{}, { label: "ms" }],
      }, data, chartBox);
    } else chart.setData(data);
    // A bucket either side of the results: a lone point (a one-off) sits in a window of minutes, not of years.
    const now = Date.now() / 1000;
    chart.setScale("x", { min: (s.t[0] ?? now) - bucket, max: (s.t[s.t.length - 1] ?? now) + bucket });
    chartBox.dataset.points = String(s.t.length);
  };
  const add = (r: Result) => {
    const k = `${r.prb_id}:${r.timestamp}`;
    if (seen.has(k)) return false;
    seen.add(k);
    results.push(r);
    return true;
  };
  // Live: results as they are stored, from the stream (public measurements; the stream carries no private ones).
  // Subscribed before the stored results are read, so none stored in between is missed (both are de-duplicated).
  let loaded = false;
  const subscribed = new Promise<void>((resolve) => {
    subscribe({ streamType: "result", msm: m.id }, (event, body) => {
      if (event === "atlas_subscribed") { count.dataset.live = "on"; resolve(); }
      if (event === "closed") resolve();
      if (event === "atlas_result" && add(body as Result) && loaded) show();
    });
  });
  await Promise.race([subscribed, new Promise((r) => setTimeout(r, 5000))]);
  if (viewNumber() !== mine) return;  // the user moved on meanwhile (leaving closed the stream)
  try {
    for (const r of await api<Result[]>(`/api/v2/measurements/${m.id}/results/?start=${from}`)) add(r);
  } catch (e) {
    count.replaceChildren(el("span", { class: "error" }, `Could not load results: ${(e as Error).message}`));
  }
  loaded = true;
  show();
}

/** Stops a measurement (its owner's key): Atlas's DELETE, then the page again with its new status. */
function stopButton(m: Measurement): HTMLElement | null {
  if (!apiKey() || m.status.id > STATUS_ONGOING) return null;
  const button = el("button", { type: "button", id: "stop-measurement" }, "Stop this measurement");
  const said = el("span", { role: "status" });
  button.addEventListener("click", async () => {
    if (!button.dataset.confirm) {
      // Two clicks, not a dialog: stopping cannot be undone.
      button.dataset.confirm = "1";
      button.textContent = "Stop it: results stop, nothing more is charged";
      return;
    }
    button.disabled = true;
    try {
      await api(`/api/v2/measurements/${m.id}/`, { method: "DELETE" });
      navigate(`#/measurements/${m.id}`);
    } catch (e) {
      said.replaceChildren(el("span", { class: "error" }, `Not stopped: ${(e as Error).message}`));
      button.disabled = false;
    }
  });
  return el("p", {}, button, " ", said);
}
