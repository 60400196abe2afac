// Built-in measurements: what every connected probe runs on its own schedule, as Atlas probes do, under
// reserved measurement ids below USER_MSM_MIN (user measurements start above 10,000,000).
//   1, 2          ping to the probe's first and second hop (found by its anchor traceroute)
//   1001 + i      ping to anchor i           (Atlas: 1001 = ping k-root)
//   5001 + i      traceroute to anchor i     (Atlas: 5001 = traceroute k-root)
//   3001, 3002    the probe's own resolvers asked for the edge's check name, A and AAAA (when the edge names one)
export const BUILTIN_FIRST_HOP_PING = 1;
export const BUILTIN_SECOND_HOP_PING = 2;
export const BUILTIN_ANCHOR_PING = 1001;
export const BUILTIN_ANCHOR_TRACEROUTE = 5001;
export const MAX_ANCHORS = 99;
/** The resolver checks: the probe's resolvers asked for A and AAAA of the name the edge's welcome gives. */
export const BUILTIN_RESOLVER_A = 3001;
export const BUILTIN_RESOLVER_AAAA = 3002;
export const USER_MSM_MIN = 10_000_000;

/** The type of a built-in measurement id, or null if the id is not a built-in. */
export function builtinType(msmId: number): "ping" | "traceroute" | "dns" | null {
  if (msmId === BUILTIN_RESOLVER_A || msmId === BUILTIN_RESOLVER_AAAA) return "dns";
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
  if (builtinType(msmId) === "ping") return `Built-in: ping to anchor ${msmId - BUILTIN_ANCHOR_PING + 1}`;
  return `Built-in: traceroute to anchor ${msmId - BUILTIN_ANCHOR_TRACEROUTE + 1}`;
}
