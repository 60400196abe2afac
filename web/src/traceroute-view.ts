// A traceroute result as a path: one row per hop with the addresses that answered (in the order they first did),
// each packet's RTT, and `*` for packets that got no answer, as Atlas's result says (`result[].result[]` of
// `{from, rtt}` or `{x: "*"}`). Shown on a traceroute measurement's page and from the DNSMON grid.
import { el, tableHead, utc, viewLink } from "./dom.ts";

export type TracerouteResult = {
  prb_id: number; msm_id: number; timestamp: number; dst_addr?: string; dst_name?: string; src_addr?: string; proto?: string;
  result?: { hop: number; error?: string; result?: { from?: string; rtt?: number; x?: string; err?: string | number }[] }[];
};

/** Whether the path reached its destination (the last hop's answers include the destination address). */
export function reached(r: TracerouteResult): boolean {
  const last = r.result?.[r.result.length - 1];
  return !!last?.result?.some((p) => p.from !== undefined && p.from === r.dst_addr);
}

export function tracerouteTable(r: TracerouteResult, caption?: string): HTMLTableElement {
  return el("table", { class: "path", "data-probe": String(r.prb_id), "data-timestamp": String(r.timestamp) },
    el("caption", {}, caption ?? `Probe ${r.prb_id} to ${r.dst_name ?? r.dst_addr ?? "?"} at ${utc(r.timestamp)}: ${reached(r) ? "reached" : "did not reach"} ${r.dst_addr ?? ""}`),
    tableHead("Hop", "Answered from", "RTT (ms)"),
    el("tbody", {}, ...(r.result ?? []).map((h) => {
      const packets = h.result ?? [];
      const froms = [...new Set(packets.map((p) => p.from).filter((f): f is string => !!f))];
      const rtts = packets.map((p) => (p.rtt !== undefined ? p.rtt.toFixed(2) : p.x ?? (p.err !== undefined ? `error ${p.err}` : "*")));
      return el("tr", {}, el("td", { class: "num" }, String(h.hop)), el("td", {}, h.error ? `error: ${h.error}` : froms.join(", ") || "*"), el("td", {}, rtts.join("  ")));
    })));
}

/** A link to the measurement a traceroute result came from. */
export function measurementLink(r: TracerouteResult): HTMLAnchorElement {
  return viewLink(`#/measurements/${r.msm_id}`, `measurement ${r.msm_id}`);
}
