// Built-in measurements: what every connected probe runs on its own schedule, as Atlas probes do, under
// reserved measurement ids below USER_MSM_MIN (user measurements start above 10,000,000).
//   1, 2          ping to the probe's first and second hop (found by its anchor traceroute)
//   1001 + i      ping to anchor i           (Atlas: 1001 = ping k-root)
//   5001 + i      traceroute to anchor i     (Atlas: 5001 = traceroute k-root)
//   3001, 3002    the probe's own resolvers asked for the edge's check name, A and AAAA (when the edge names one)
//   7001, 7002    DNS statistics an appliance collects (protocol/datasources.ts): public, or its owner's only
//   7101, 7102    traffic reports of an appliance's classifier: public, or its owner's only
//   7201, 7202    the DNS statistics' sample of whole query/response pairs, as C-DNS blocks: public, or its owner's only
// The data sources are not measurements: a host turns them on in the agent's config, and whether they are public is
// in the id, so every reader that carries public measurements only (stream, bundles, queries across measurements)
// keeps a private one out by its id alone.
export const BUILTIN_FIRST_HOP_PING = 1;
export const BUILTIN_SECOND_HOP_PING = 2;
export const BUILTIN_ANCHOR_PING = 1001;
export const BUILTIN_ANCHOR_TRACEROUTE = 5001;
export const MAX_ANCHORS = 99;
/** The resolver checks: the probe's resolvers asked for A and AAAA of the name the edge's welcome gives. */
export const BUILTIN_RESOLVER_A = 3001;
export const BUILTIN_RESOLVER_AAAA = 3002;
export const USER_MSM_MIN = 10_000_000;
export const DNSSTATS_PUBLIC = 7001;
export const DNSSTATS_PRIVATE = 7002;
export const TRAFFIC_PUBLIC = 7101;
export const TRAFFIC_PRIVATE = 7102;
export const CDNS_PUBLIC = 7201;
export const CDNS_PRIVATE = 7202;
export type DataSourceKind = "dnsstats" | "traffic" | "cdns";

/** The id a data source's records go under: its kind and whether the host made it public. */
export function dataSourceId(kind: DataSourceKind, isPublic: boolean): number {
  if (kind === "dnsstats") return isPublic ? DNSSTATS_PUBLIC : DNSSTATS_PRIVATE;
  if (kind === "traffic") return isPublic ? TRAFFIC_PUBLIC : TRAFFIC_PRIVATE;
  return isPublic ? CDNS_PUBLIC : CDNS_PRIVATE;
}

/** Whether a built-in's results are public: every built-in measurement is; a data source when its host said so. */
export function builtinPublic(msmId: number): boolean {
  return msmId !== DNSSTATS_PRIVATE && msmId !== TRAFFIC_PRIVATE && msmId !== CDNS_PRIVATE;
}

/** The type of a built-in measurement id, or null if the id is not a built-in. */
export function builtinType(msmId: number): "ping" | "traceroute" | "dns" | DataSourceKind | null {
  if (msmId === BUILTIN_RESOLVER_A || msmId === BUILTIN_RESOLVER_AAAA) return "dns";
  if (msmId === DNSSTATS_PUBLIC || msmId === DNSSTATS_PRIVATE) return "dnsstats";
  if (msmId === TRAFFIC_PUBLIC || msmId === TRAFFIC_PRIVATE) return "traffic";
  if (msmId === CDNS_PUBLIC || msmId === CDNS_PRIVATE) return "cdns";
  if (msmId === BUILTIN_FIRST_HOP_PING || msmId === BUILTIN_SECOND_HOP_PING) return "ping";
  if (msmId >= BUILTIN_ANCHOR_PING && msmId < BUILTIN_ANCHOR_PING + MAX_ANCHORS) return "ping";
  if (msmId >= BUILTIN_ANCHOR_TRACEROUTE && msmId < BUILTIN_ANCHOR_TRACEROUTE + MAX_ANCHORS) return "traceroute";
  return null;
}

export function builtinDescription(msmId: number): string {
  if (msmId === BUILTIN_FIRST_HOP_PING) return "Built-in: ping to the first hop";
  if (msmId === BUILTIN_SECOND_HOP_PING) return "Built-in: ping to the second hop";
  if (msmId === BUILTIN_RESOLVER_A) return "Built-in: the probe's resolvers asked for the check name's A records";
  if (msmId === BUILTIN_RESOLVER_AAAA) return "Built-in: the probe's resolvers asked for the check name's AAAA records";
  if (msmId === DNSSTATS_PUBLIC || msmId === DNSSTATS_PRIVATE) return `Data source: DNS statistics of appliances (${builtinPublic(msmId) ? "public" : "their owners' only"})`;
  if (msmId === TRAFFIC_PUBLIC || msmId === TRAFFIC_PRIVATE) return `Data source: traffic reports of appliances (${builtinPublic(msmId) ? "public" : "their owners' only"})`;
  if (msmId === CDNS_PUBLIC || msmId === CDNS_PRIVATE) return `Data source: sampled DNS query/response pairs of appliances, C-DNS (${builtinPublic(msmId) ? "public" : "their owners' only"})`;
  if (builtinType(msmId) === "ping") return `Built-in: ping to anchor ${msmId - BUILTIN_ANCHOR_PING + 1}`;
  return `Built-in: traceroute to anchor ${msmId - BUILTIN_ANCHOR_TRACEROUTE + 1}`;
}
