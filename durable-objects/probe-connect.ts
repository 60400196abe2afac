// Who may open a socket to a controller: a WebSocket upgrade offering Vantage's sub-protocol, with an assignment
// token the edge signed for this shard, whose id has not opened a socket that is still open (a token seen in transit
// or in a log cannot push the probe off its controller), for a probe the operator has not disconnected since; a probe
// coming from another shard is handed over first. What the controller then keeps about the probe is newAttachment().
import { type AssignmentClaims, SUBPROTOCOL } from "../protocol/index.ts";
import type { ProbeAttachment } from "./probe-attachment.ts";
import type { Sql } from "./sql.ts";
import { reachFrom, systemTags, worksOf } from "./system-tags.ts";
import { audienceFor, RESUME_TTL_SECONDS, verifyAssignment } from "./tokens.ts";

export type ConnectHost = {
  env: Env;
  ctx: DurableObjectState;
  sql: Sql;
  shard: string;
  /** Takes the probe's state over from the shard it comes from (handover.ts). */
  adopt: (probeId: number, from: string) => Promise<void>;
};

/** Assignment token ids already spent: forgetting the expired ones is at most once a minute (see spend()). */
export class UsedTokens {
  private forgottenAt = 0;
  private readonly ctx: DurableObjectState;
  private readonly sql: Sql;

  constructor(ctx: DurableObjectState, sql: Sql) {
    this.ctx = ctx;
    this.sql = sql;
  }

  /** Spends a token id; false if it was spent before. */
  spend(jti: string, expires: number, now: number): boolean {
    return this.ctx.storage.transactionSync(() => {
      // Expired ids are forgotten at most once a minute: the table has no index on `expires` (one would cost a row
      // written per connection), and scanning it on every connection made a 10,000-probe storm quadratic.
      if (now - this.forgottenAt >= 60) {
        this.forgottenAt = now;
        this.sql("DELETE FROM used_tokens WHERE expires < ?", now);
      }
      return this.sql("INSERT INTO used_tokens (jti, expires) VALUES (?, ?) ON CONFLICT (jti) DO NOTHING RETURNING jti", jti, expires).length > 0;
    });
  }
}

/** The header the Worker stamps on a probe's connection with when it received it (unix ms); a client's own is replaced. */
export const RECEIVED_HEADER = "Vantage-Edge-Received";
/**
 * A connection that waited longer than this for its controller (a reconnect storm queues thousands) is turned away
 * at once, before any work: the agent gives a handshake up after 15 s, and a socket accepted after that is work
 * thrown away while the queue grows (8,000 probes: 23,717 handshakes timed out, bench:controller).
 */
export const SHED_AFTER_MS = 5000;

/**
 * A 503 with Retry-After for a connection that waited past SHED_AFTER_MS, or null. Nothing was spent: the probe
 * comes back with the same token after Retry-After, spread over 5–30 s so the comebacks do not queue up again.
 */
export function shedLate(request: Request, now = Date.now(), random = Math.random): Response | null {
  const received = Number(request.headers.get(RECEIVED_HEADER));
  if (!(received > 0)) return null;
  const waited = now - received;
  if (waited <= SHED_AFTER_MS) return null;
  const retry = 5 + Math.floor(random() * 26);
  return new Response(`controller busy: this connection waited ${(waited / 1000).toFixed(1)} s for it; retry in ${retry} s with the same token`,
    { status: 503, headers: { "Retry-After": String(retry) } });
}

/** The probe and its token's claims if it may connect now, or the response that refuses it (saying why). */
export async function admitConnection(h: ConnectHost, tokens: UsedTokens, request: Request): Promise<{ probeId: number; claims: AssignmentClaims } | Response> {
  if (request.headers.get("Upgrade")?.toLowerCase() !== "websocket") {
    return new Response("expected a WebSocket upgrade", { status: 426 });
  }
  const protocols = (request.headers.get("Sec-WebSocket-Protocol") ?? "").split(",").map((s) => s.trim());
  if (!protocols.includes(SUBPROTOCOL)) {
    return new Response(`unsupported protocol: offer ${SUBPROTOCOL}`, { status: 400 });
  }
  const token = request.headers.get("Authorization")?.match(/^Bearer\s+(\S+)$/)?.[1];
  if (!token) return new Response("missing assignment token", { status: 401 });
  let claims;
  try {
    claims = await verifyAssignment(h.env.EDGE_PUBLIC_JWK, token, h.shard);
  } catch (e) {
    return new Response((e as Error).message, { status: 403 });
  }
  const probeId = Number(claims.sub);
  const jti = (claims as { jti?: string }).jti, exp = (claims as { exp?: number }).exp ?? 0;
  if (!jti) return new Response("assignment token has no id", { status: 403 });
  const fresh = tokens.spend(jti, exp, Math.floor(Date.now() / 1000));
  // A token whose socket is gone may open one again while the probe has none open: the probe gave up waiting for
  // the 101 (a reconnect storm answers slowly) and tries again with it. It cannot push a connected probe off.
  if (!fresh && h.ctx.getWebSockets(`probe:${probeId}`).some((w) => w.readyState === WebSocket.OPEN)) {
    return new Response("assignment token already used: register again for a new one", { status: 403 });
  }
  const dropped = h.sql<{ at: number }>("SELECT at FROM dropped WHERE probe_id = ?", probeId)[0];
  if (dropped && dropped.at >= ((claims as { iat?: number }).iat ?? 0)) {
    return new Response("this probe was disconnected by the operator: register again", { status: 403 });
  }
  if (claims.prev_shard && claims.prev_shard !== h.shard) {
    try {
      await h.adopt(probeId, claims.prev_shard);
    } catch (e) {
      console.error(`controller ${h.shard}: probe ${probeId}: handover from ${claims.prev_shard} failed: ${String(e)}`);
      return new Response(`this probe's previous controller (${claims.prev_shard}) could not hand it over yet; register again`, { status: 503 });
    }
  }
  return { probeId, claims };
}

/**
 * The operator disconnected the probe: its tokens issued until now, resume tokens above all, stop working here (it
 * must register, which the registry refuses while it is disabled).
 */
export function dropProbe(sql: Sql, probeId: number): void {
  const now = Math.floor(Date.now() / 1000);
  sql("DELETE FROM dropped WHERE at < ?", now - RESUME_TTL_SECONDS);
  sql("INSERT OR REPLACE INTO dropped (probe_id, at) VALUES (?, ?)", probeId, now);
}

/** The operator enabled the probe again: its tokens connect here again. */
export function undropProbe(sql: Sql, probeId: number): void {
  sql("DELETE FROM dropped WHERE probe_id = ?", probeId);
}

/** What the controller keeps about a probe it just accepted (its socket's attachment). */
export function newAttachment(probeId: number, claims: AssignmentClaims, request: Request): ProbeAttachment {
  const now = Math.floor(Date.now() / 1000);
  const address = request.headers.get("CF-Connecting-IP");
  // The runs of working built-ins the registry (or the resume token) carried: stability goes on from them.
  const reach = reachFrom(claims.works);
  return {
    probe_id: probeId,
    country_code: claims.country_code,
    asn_v4: claims.asn_v4,
    prefix_v4: claims.prefix_v4,
    tags: claims.tags ?? [],
    reach,
    works_reported: claims.works ?? {},
    system_tags: systemTags(address, reach, claims.system_tags),
    cell: claims.cell ?? null,
    registered_at: claims.registered_at ?? (claims as { iat?: number }).iat ?? now,
    address,
    connected_since: now,
    last_seen: now,
    slots: 0,
    free_slots: 0,
  };
}

/**
 * The claims of the resume token a connected probe is given (tokens.ts RESUME_TTL_SECONDS): what its registration
 * said of it, for this shard, with the runs of working built-ins it has now, so its next connection goes on from them.
 */
export function resumeClaims(shard: string, a: ProbeAttachment): AssignmentClaims {
  return {
    sub: String(a.probe_id), aud: audienceFor(shard), country_code: a.country_code, asn_v4: a.asn_v4, prefix_v4: a.prefix_v4,
    tags: a.tags ?? [], cell: a.cell ?? null, prev_shard: null, registered_at: a.registered_at, system_tags: a.system_tags ?? [],
    works: worksOf(a.reach),
  };
}
