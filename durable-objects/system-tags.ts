// Atlas's system probe tags, kept current by the controller from each probe's own built-in measurements and its
// address, as RIPE Atlas keeps them (https://atlas.ripe.net/docs/…/probe-tags: "system-ipv4-works" etc.). Users and
// RIPE's own `ripe-atlas measure` select probes with them: the client asks for `system-ipv4-works` (or -ipv6-) on
// every measurement it creates, so a network that never sets them answers "No suitable probes".
//
// What is derived, and from what:
//   system-ipv4-capable / system-ipv6-capable  the probe connects from an address of that family, or its newest
//                                              built-in anchor ping of that family had one as its source;
//   system-ipv4-works / system-ipv6-works      its newest built-in ping to an anchor (1001+) over that family got
//                                              at least one reply.
// Not derived (Vantage has no built-in DNS measurement yet): system-resolves-a-correctly, -aaaa-correctly.
import { BUILTIN_ANCHOR_PING, isIPv4, isIPv6, MAX_ANCHORS, type Result } from "../protocol/index.ts";

/** The newest built-in anchor ping per address family: when, whether it had a source address, whether it got a reply. */
type Ping = { at: number; sourced: boolean; ok: boolean };
export type Reachability = { 4?: Ping; 6?: Ping };

/**
 * The system tags a probe with this address and these built-in results has, sorted. A family none of its built-ins
 * has spoken for yet keeps the tags `carried` (what the registry last knew, brought along by its token).
 */
export function systemTags(address: string | null, reach: Reachability | undefined, carried: string[] = []): string[] {
  const tags = new Set<string>();
  if (address && isIPv4(address)) tags.add("system-ipv4-capable");
  if (address && isIPv6(address)) tags.add("system-ipv6-capable");
  for (const af of [4, 6] as const) {
    const r = reach?.[af];
    if (!r) {
      for (const t of carried) if (t.startsWith(`system-ipv${af}-`)) tags.add(t);
      continue;
    }
    if (r.sourced) tags.add(`system-ipv${af}-capable`);
    if (r.ok) tags.add(`system-ipv${af}-works`);
  }
  return [...tags].sort();
}

/** Whether a result is a built-in ping to an anchor (the ones the "works" tags are read from). */
function anchorPing(r: Result): r is Extract<Result, { type: "ping" }> {
  return r.type === "ping" && r.msm_id >= BUILTIN_ANCHOR_PING && r.msm_id < BUILTIN_ANCHOR_PING + MAX_ANCHORS;
}

/** The reachability after these stored results (only a newer anchor ping of a family replaces its entry). */
export function noteBuiltins(reach: Reachability | undefined, results: Result[]): Reachability | undefined {
  let next = reach;
  for (const r of results) {
    if (!anchorPing(r)) continue;
    const before = next?.[r.af];
    if (before && before.at > r.timestamp) continue;
    // A probe without an address of the family sends its ping with no source address (and no reply).
    const sourced = !!r.src_addr && (r.af === 4 ? isIPv4(r.src_addr) : isIPv6(r.src_addr));
    next = { ...next, [r.af]: { at: r.timestamp, sourced, ok: sourced && r.rcvd > 0 } };
  }
  return next;
}

/** Atlas's names for the system tags, as its probe objects show them. */
export const SYSTEM_TAG_NAMES: Record<string, string> = {
  "system-ipv4-capable": "IPv4 Capable",
  "system-ipv6-capable": "IPv6 Capable",
  "system-ipv4-works": "IPv4 Works",
  "system-ipv6-works": "IPv6 Works",
};
