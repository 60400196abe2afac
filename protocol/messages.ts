// The probe ↔ controller protocol, version 1 (docs/protocol.md). One JSON object per WebSocket frame, each with a
// `type`. Both sides validate every frame they receive: the probe the controller's frames with these schemas, the
// controller the probe's with those in probe-messages.ts. Registration's messages are here too.
import * as z from "zod/mini";
import { MeasurementSpec } from "./atlas.ts";
import { RELEASE_VERSION } from "./release.ts";

export const PROTOCOL_VERSION = 1;
/** WebSocket sub-protocol both sides must agree on. */
export const SUBPROTOCOL = "vantage.v1";

export const Assignment = z.object({
  msm_id: z.int().check(z.positive()),
  spec: MeasurementSpec,
  /** Seconds between runs; null for a one-off. */
  interval: z.nullable(z.int().check(z.positive())),
  spread: z.int().check(z.minimum(0)),
  start_time: z.int(),
  stop_time: z.nullable(z.int()),
});
export type Assignment = z.output<typeof Assignment>;

export const ControllerMessage = z.discriminatedUnion("type", [
  z.object({
    type: z.literal("welcome"), probe_id: z.int(), shard: z.string(), server_time: z.number(), allow_private_targets: z.boolean(),
    /** A name the probe's own resolvers are asked for (built-ins 3001/3002); the edge knows its right answers. */
    resolver_check: z.optional(z.string().check(z.maxLength(253))),
  }),
  z.object({ type: z.literal("status_ack"), server_time: z.number() }),
  z.object({ type: z.literal("measure"), assignment: Assignment }),
  z.object({ type: z.literal("stop"), msm_id: z.int() }),
  /** Every result with seq ≤ upto is durable (or was refused): the probe may forget it. */
  z.object({ type: z.literal("ack"), upto: z.int() }),
  /**
   * A frame or a result (seq) was refused; the reason names what is wrong. With `retry_after` (seconds) the probe
   * sent more than its allowance: nothing past the last ack was stored, and it sends again after that long.
   */
  z.object({ type: z.literal("reject"), seq: z.nullable(z.int()), reason: z.string(), retry_after: z.optional(z.int().check(z.positive())) }),
  /**
   * A token to reconnect to this controller once, without registering, until `expires` (unix seconds); the probe
   * checks it against the pinned edge key. Sent after the hello and again before it expires.
   */
  z.object({ type: z.literal("resume"), token: z.string().check(z.maxLength(4096)), expires: z.number() }),
  /** Run this signed release (fetched from `path` on the edge), if its signature verifies with the pinned key. */
  z.object({
    type: z.literal("release"), rollout: z.int().check(z.positive()), version: z.string().check(z.regex(RELEASE_VERSION)),
    sha256: z.string().check(z.regex(/^[0-9a-f]{64}$/)), size: z.int().check(z.positive()), signature: z.string().check(z.maxLength(200)),
    path: z.string().check(z.regex(/^\/probe\/v1\/releases\/[0-9A-Za-z.-]+$/)),
  }),
]);
export type ControllerMessage = z.output<typeof ControllerMessage>;

/** Registration: the probe signs `{probe_id, nonce}` as a compact EdDSA JWS with its own key. */
export const ChallengeRequest = z.object({ probe_id: z.int().check(z.positive()) });
export const RegisterRequest = z.object({ probe_id: z.int().check(z.positive()), proof: z.string().check(z.maxLength(4096)) });
export const RegisterResponse = z.object({
  probe_id: z.int(),
  shard: z.string(),
  token: z.string(),
  websocket_url: z.string(),
  expires: z.number(),
});
export type RegisterResponse = z.output<typeof RegisterResponse>;

/** Claims of the assignment token the edge issues (audience = the controller shard). */
export type AssignmentClaims = {
  sub: string;
  aud: string;
  country_code: string | null;
  asn_v4: number | null;
  prefix_v4: string | null;
  /** Operator-set probe tags, matched by sources' include/exclude. */
  tags?: string[];
  /** Where the probe is, to a tenth of a degree (about a city): dispatch spreads a measurement over cities. */
  cell?: string | null;
  /** The shard the probe was last connected to, when it is another: its assignments and marks are handed over. */
  prev_shard?: string | null;
  /** When the probe last registered (a resume token carries its registration's time: renewals stop a day on). */
  registered_at?: number;
  /** Atlas system tags last derived for the probe (durable-objects/system-tags.ts), carried until its built-ins renew them. */
  system_tags?: string[];
  /** Per family, its unbroken run of answered built-in anchor pings as [since, newest] (the stability tags go on from it). */
  works?: { 4?: [number, number]; 6?: [number, number] };
};
