// Atlas's system probe tags, kept current by the controller from each probe's own built-in measurements and its
// address, as RIPE Atlas keeps them (https://atlas.ripe.net/docs/…/probe-tags: "system-ipv4-works" etc.). Users and
// RIPE's own `ripe-atlas measure` select probes with them: the client asks for `system-ipv4-works` (or -ipv6-) on
// every measurement it creates, so a network that never sets them answers "No suitable probes".
//
// What is derived, and from what:
//   system-ipv4-capable / system-ipv6-capable  the probe connects from an address of that family, or its newest
//                                              built-in anchor ping of that family had one as its source;
//   system-ipv4-works / system-ipv6-works      its newest built-in ping to an anchor (1001+) over that family got
//                                              at least one reply;
//   system-ipv4-stable-1d / -30d / -90d (and   every built-in anchor ping of that family for that long got a reply,
//   ipv6)                                      with no gap over STABLE_GAP_S between them (kept across reconnections
//                                              and registrations: the registry and the probe's tokens carry the run);
//   system-resolves-a-correctly / -aaaa-       its newest built-in resolver check (3001 A, 3002 AAAA: its own resolvers
//                                              asked for the operator's check name) was answered, and every resolver
//                                              that answered gave exactly the addresses the operator configured
//                                              (RESOLVER_CHECK); without a check configured these are not derived.
import { decode } from "@leichtgewicht/dns-packet";
import { BUILTIN_ANCHOR_PING, BUILTIN_RESOLVER_A, BUILTIN_RESOLVER_AAAA, isIPv4, isIPv6, MAX_ANCHORS, type Result } from "../protocol/index.ts";
import { parseAddress } from "../protocol/address-policy.ts";

/**
 * The newest built-in anchor ping per address family: when, whether it had a source address, whether it got a reply,
 * and since when every one of them did (the unbroken run the stability tags count).
 */
type Ping = { at: number; sourced: boolean; ok: boolean; since?: number };

/** A ping more than this long after the one before starts a new run (the probe was off, or its built-ins were). */
export const STABLE_GAP_S = 3600;
/** Atlas's stability tags: so many days of answered built-in pings. */
const STABLE_DAYS = [1, 30, 90];

/** Per family, the unbroken run of answered anchor pings as [since, newest]: what the registry and tokens carry. */
export type Works = { 4?: [number, number]; 6?: [number, number] };

export function worksOf(reach: Reachability | undefined): Works {
  const out: Works = {};
  for (const af of [4, 6] as const) {
    const r = reach?.[af];
    if (r?.ok && r.since !== undefined) out[af] = [r.since, r.at];
  }
  return out;
}

/** The reachability a probe connects with: its families' runs as the registry (or its token) last knew them. */
export function reachFrom(works: Works | undefined): Reachability | undefined {
  let reach: Reachability | undefined;
  for (const af of [4, 6] as const) {
    const w = works?.[af];
    if (Array.isArray(w) && w.length === 2 && w.every(Number.isSafeInteger) && w[0] <= w[1]) reach = { ...reach, [af]: { at: w[1], sourced: true, ok: true, since: w[0] } };
  }
  return reach;
}
/** The newest built-in resolver check per record type: when, and whether the probe's resolvers answered it right. */
type Resolves = { at: number; ok: boolean };
export type Reachability = { 4?: Ping; 6?: Ping; A?: Resolves; AAAA?: Resolves };

/** The operator's resolver check (the edge's RESOLVER_CHECK): a name, and the addresses a correct resolver gives. */
export type ResolverCheck = { name: string; a: string[]; aaaa: string[] };

let parsedCheck: { raw: string; check: ResolverCheck } | null = null;

/**
 * RESOLVER_CHECK (`{"name": "…", "a": ["…"], "aaaa": ["…"]}`) as configured, addresses in their canonical spelling (RFC 5952);
 * null when none is. A malformed one is an error naming what is wrong (an operator's mistake must not pass silently).
 */
export function resolverCheckOf(raw: string | undefined): ResolverCheck | null {
  if (!raw) return null;
  if (parsedCheck?.raw === raw) return parsedCheck.check;
  let v: { name?: unknown; a?: unknown; aaaa?: unknown };
  try {
    v = JSON.parse(raw) as typeof v;
  } catch {
    throw new Error('RESOLVER_CHECK is not JSON: write {"name": "check.example.net", "a": ["192.0.2.1"], "aaaa": ["2001:db8::1"]}');
  }
  if (typeof v.name !== "string" || !/^([a-z0-9_-]{1,63}\.)+[a-z0-9-]{1,63}\.?$/i.test(v.name) || v.name.length > 253) {
    throw new Error("RESOLVER_CHECK.name must be a domain name");
  }
  const family = (list: unknown, af: 4 | 6, field: string) => {
    if (!Array.isArray(list) || list.length === 0) throw new Error(`RESOLVER_CHECK.${field} must list the name's IPv${af} addresses`);
    return list.map((x) => {
      const parsed = typeof x === "string" ? parseAddress(x) : null;
      if (!parsed || parsed.family !== af) throw new Error(`RESOLVER_CHECK.${field}: ${JSON.stringify(x)} is not an IPv${af} address`);
      return parsed.ip.toString();
    }).sort();
  };
  const check = { name: v.name.replace(/\.$/, "").toLowerCase(), a: family(v.a, 4, "a"), aaaa: family(v.aaaa, 6, "aaaa") };
  parsedCheck = { raw, check };
  return check;
}

/** The edge's resolver check, or null when none is configured or it is malformed (said in the log, once per value). */
export function resolverCheck(env: Env): ResolverCheck | null {
  try {
    return resolverCheckOf(env.RESOLVER_CHECK);
  } catch (e) {
    if (reportedBad !== env.RESOLVER_CHECK) console.error(`${(e as Error).message}; probes' resolvers are not checked`);
    reportedBad = env.RESOLVER_CHECK;
    return null;
  }
}
let reportedBad: string | undefined;

/**
 * Whether a built-in resolver check was answered right: at least one of the probe's resolvers answered, and each
 * that answered said NOERROR with exactly the expected addresses (any spelling; a CNAME on the way is fine). A
 * resolver that timed out is not counted against it; one that lies (another address, NXDOMAIN) is.
 */
function answeredRight(r: Extract<Result, { type: "dns" }>, check: ResolverCheck, kind: "A" | "AAAA"): boolean {
  const expected = kind === "A" ? check.a : check.aaaa;
  const answers = (r.resultset ?? (r.result ? [{ result: r.result }] : [])).map((x) => x.result?.abuf).filter((b): b is string => !!b);
  if (answers.length === 0) return false;
  return answers.every((abuf) => {
    try {
      const packet = decode(Uint8Array.from(atob(abuf), (c) => c.charCodeAt(0)));
      // The answer to the check's own question, and nothing else, is judged.
      const q = packet.questions?.[0];
      if (!q || q.type !== kind || q.name.replace(/\.$/, "").toLowerCase() !== check.name || packet.rcode !== "NOERROR") return false;
      const got = (packet.answers ?? []).filter((a) => a.type === "A" || a.type === "AAAA").map((a) => parseAddress(String(a.data))?.ip.toString() ?? "?");
      return [...new Set(got)].sort().join() === expected.join();
    } catch {
      return false;  // an answer that does not decode is not a right one
    }
  });
}

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
    for (const days of STABLE_DAYS) if (r.ok && r.since !== undefined && r.at - r.since >= days * 86_400) tags.add(`system-ipv${af}-stable-${days}d`);
  }
  for (const kind of ["A", "AAAA"] as const) {
    const tag = `system-resolves-${kind.toLowerCase()}-correctly`;
    const r = reach?.[kind];
    if (r ? r.ok : carried.includes(tag)) tags.add(tag);
  }
  return [...tags].sort();
}

/** Whether a result is a built-in ping to an anchor (the ones the "works" tags are read from). */
function anchorPing(r: Result): r is Extract<Result, { type: "ping" }> {
  return r.type === "ping" && r.msm_id >= BUILTIN_ANCHOR_PING && r.msm_id < BUILTIN_ANCHOR_PING + MAX_ANCHORS;
}

/**
 * The reachability after these stored results (only a newer anchor ping of a family, or a newer resolver check of a
 * record type, replaces its entry). Resolver checks are judged against `check` (none configured: not read).
 */
export function noteBuiltins(reach: Reachability | undefined, results: Result[], check: ResolverCheck | null = null): Reachability | undefined {
  let next = reach;
  for (const r of results) {
    if (check && r.type === "dns" && (r.msm_id === BUILTIN_RESOLVER_A || r.msm_id === BUILTIN_RESOLVER_AAAA)) {
      const kind = r.msm_id === BUILTIN_RESOLVER_A ? "A" : "AAAA";
      if ((next?.[kind]?.at ?? -1) > r.timestamp) continue;
      next = { ...next, [kind]: { at: r.timestamp, ok: answeredRight(r, check, kind) } };
      continue;
    }
    if (!anchorPing(r)) continue;
    const before = next?.[r.af];
    if (before && before.at > r.timestamp) continue;
    // A probe without an address of the family sends its ping with no source address (and no reply).
    const sourced = !!r.src_addr && (r.af === 4 ? isIPv4(r.src_addr) : isIPv6(r.src_addr));
    const ok = sourced && r.rcvd > 0;
    // An answered ping continues the run of the one before it if that was answered too and not long before.
    const since = !ok ? undefined : before?.ok && before.since !== undefined && r.timestamp - before.at <= STABLE_GAP_S ? before.since : r.timestamp;
    next = { ...next, [r.af]: { at: r.timestamp, sourced, ok, ...(since === undefined ? {} : { since }) } };
  }
  return next;
}

/** Atlas's names for the system tags, as its probe objects show them. */
export const SYSTEM_TAG_NAMES: Record<string, string> = {
  "system-ipv4-capable": "IPv4 Capable",
  "system-ipv6-capable": "IPv6 Capable",
  "system-ipv4-works": "IPv4 Works",
  "system-ipv6-works": "IPv6 Works",
  "system-ipv4-stable-1d": "IPv4 Stable 1d",
  "system-ipv4-stable-30d": "IPv4 Stable 30d",
  "system-ipv4-stable-90d": "IPv4 Stable 90d",
  "system-ipv6-stable-1d": "IPv6 Stable 1d",
  "system-ipv6-stable-30d": "IPv6 Stable 30d",
  "system-ipv6-stable-90d": "IPv6 Stable 90d",
  "system-resolves-a-correctly": "Resolves A Correctly",
  "system-resolves-aaaa-correctly": "Resolves AAAA Correctly",
};
