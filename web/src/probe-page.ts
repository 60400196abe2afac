// A probe's page (#/probes/<id>): what the probes API says of it, its tags, and its newest built-in pings toward
// the anchors (built-in measurement 1001…, public like Atlas's).
import { api, ApiError, type Probe } from "./api.ts";
import { el, facts, tableHead, utc, viewLink } from "./dom.ts";

/** Built-in ping toward the first anchor (protocol/builtins.ts BUILTIN_ANCHOR_PING). */
const BUILTIN_PING = 1001;

type PingResult = { timestamp: number; dst_addr?: string; dst_name?: string; sent: number; rcvd: number; min: number; avg: number; max: number };


export async function probePage(id: string, view: HTMLElement): Promise<void> {
  view.replaceChildren(el("h1", {}, `Probe ${id}`), el("p", { role: "status" }, "Loading…"));
  if (!/^\d{1,10}$/.test(id)) {
    view.replaceChildren(el("h1", {}, "No such probe"), el("p", { class: "error" }, `"${id}" is not a probe id.`), viewLink("#/probes", "All probes"));
    return;
  }
  let p: Probe;
  try {
    p = await api<Probe>(`/api/v2/probes/${id}/`);
  } catch (e) {
    view.replaceChildren(el("h1", {}, `Probe ${id}`), el("p", { class: "error" }, e instanceof ApiError && e.status === 404 ? `There is no probe ${id}.` : `Could not load probe ${id}: ${(e as Error).message}`),
      viewLink("#/probes", "All probes"));
    return;
  }
  const known: [string, string][] = [
    ["Description", p.description || "—"], ["Status", `${p.status.name} since ${p.status.since ?? "—"}`],
    ["Country", p.country_code ?? "—"], ["ASN (IPv4)", p.asn_v4 === null ? "—" : String(p.asn_v4)], ["Prefix (IPv4)", p.prefix_v4 ?? "—"],
    ["Address (IPv4)", p.address_v4 ?? "—"], ["Location", p.geometry ? `${p.geometry.coordinates[1]}, ${p.geometry.coordinates[0]}` : "—"],
    ["First connected", utc(p.first_connected, "never")], ["Last connected", utc(p.last_connected, "never")],
    ["Uptime", `${(p.total_uptime / 3600).toFixed(1)} h`],
  ];
  const results = el("section", { "aria-labelledby": "builtins" }, el("h2", { id: "builtins" }, "Newest built-in pings"), el("p", {}, "Loading…"));
  view.replaceChildren(
    el("h1", {}, `Probe ${p.id}`),
    facts(known),
    el("h2", {}, "Tags"),
    p.tags.length ? el("ul", { class: "tags" }, ...p.tags.map((t) => el("li", {}, t.name === t.slug ? t.slug : `${t.name} (${t.slug})`))) : el("p", {}, "None."),
    results,
    el("p", {}, viewLink(`#/probes?country_code=${encodeURIComponent(p.country_code ?? "")}`, `Probes in ${p.country_code ?? "the same country"}`)),
  );
  try {
    const start = Math.floor(Date.now() / 1000) - 86_400;
    const rows = (await api<PingResult[]>(`/api/v2/measurements/${BUILTIN_PING}/results/?probe_ids=${p.id}&start=${start}`)).slice(-10).reverse();
    results.replaceChildren(results.firstChild!, rows.length ? el("table", {},
      tableHead("Time (UTC)", "Target", "Sent / received", "RTT min / avg / max (ms)"),
      el("tbody", {}, ...rows.map((r) => el("tr", {}, el("td", {}, utc(r.timestamp)), el("td", {}, r.dst_name ?? r.dst_addr ?? "—"),
        el("td", {}, `${r.sent} / ${r.rcvd}`), el("td", {}, r.rcvd ? [r.min, r.avg, r.max].map((x) => x.toFixed(2)).join(" / ") : "no reply")))))
      : el("p", {}, "No built-in ping in the last day."));
  } catch (e) {
    results.replaceChildren(results.firstChild!, el("p", { class: "error" }, `Could not load its built-in results: ${(e as Error).message}`));
  }
}
