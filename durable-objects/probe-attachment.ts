// What a controller keeps about each connected probe, in its socket's attachment (connected.ts keeps it in memory
// too), and what it tells the brain about the probes it gives a measurement to.
import type { Allowance } from "./admission.ts";
import type { Reachability, Works } from "./system-tags.ts";

/** What the controller keeps about each connected probe, in the socket attachment (survives hibernation). */
export type ProbeAttachment = {
  probe_id: number;
  country_code: string | null;
  asn_v4: number | null;
  prefix_v4: string | null;
  tags?: string[];
  /** Latitude,longitude to 0.1° (about a city), from the registry; null when unknown. */
  cell?: string | null;
  address: string | null;
  connected_since: number;
  /** When the probe last sent anything (unix seconds); probes send a status at least every heartbeat. */
  last_seen: number;
  slots: number;
  free_slots: number;
  /** The agent's version, from its hello ("vantage-probe/1.2.3"). */
  version?: string;
  /** Its use of the per-minute result allowance (admission.ts). */
  allowance?: Allowance;
  /** Timestamp of the last stored result of each built-in measurement id, which bounds how often they come. */
  builtin_last?: Record<number, number>;
  /** When the resume token the probe holds expires (it is sent a new one at half its life). */
  resume_expires?: number;
  /** When the probe last registered (tokens.ts RESUME_CHAIN_SECONDS). */
  registered_at?: number;
  /** Its newest built-in anchor pings per family, and the Atlas system tags they and its address give (system-tags.ts). */
  reach?: Reachability;
  system_tags?: string[];
  /** The runs of working built-ins the registry last heard of (reported again when they move on by an hour). */
  works_reported?: Works;
};

/** A probe taking part in a measurement, on `shard`; `was`: shards it ran it on before it moved (they hold results). */
export type Participant = { probe_id: number; shard: string; country_code: string | null; asn_v4: number | null; was?: string[] };
