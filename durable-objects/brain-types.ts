// What the brain keeps of a measurement and tells its callers (the API, quotas.ts): shared types, in a module of
// their own so that no module imports a type from the brain that imports it.
import type { ProbeSource } from "../protocol/index.ts";

export type Alert = { id: number; type: "crowd"; target: string; accounts: number; window_s: number; time: number; measurements: number[] };

/** Told to the caller with a 2xx: e.g. an identical recent measurement whose answer could be reused. */
export type Warning = { code: "duplicate" | "fewer_probes"; detail: string; measurement: number };

/** Why a creation request was refused: the HTTP status, what to tell the user, and when to retry (429). */
export type Refusal = { ok: false; status: 400 | 402 | 429; detail: string; retry_after?: number; pointer?: string };

export type MeasurementRow = {
  id: number;
  type: string;
  definition: string;
  sources: string;
  status_id: number;
  status_when: number;
  creation_time: number;
  start_time: number;
  stop_time: number | null;
  interval: number | null;
  spread: number | null;
  is_oneoff: number;
  probes_requested: number;
  probes_scheduled: number;
  participants: string;
  owner: string;
  target: string | null;
  /** 0 for a private measurement (`is_public: false`). */
  is_public: number;
  /** The first measurement's id when one request created several (Atlas's group leader); null otherwise. */
  group_id: number | null;
};

/** Atlas's participation request: add probes from a source, or remove probes by id (`value` "1,2,3"). */
export type ParticipationRequest = ({ action: "add" } & ProbeSource) | { action: "remove"; type: "probes"; value: string; requested?: number };

/** `visible_to`: only public measurements and this account's (null: public ones only); undefined: all. */
export type MeasurementFilter = {
  ids?: number[]; status?: number[]; type?: string; af?: number; is_oneoff?: boolean; is_public?: boolean; owner?: string; visible_to?: string | null;
  target?: string; target_contains?: string; target_startswith?: string;
  description?: string; description_contains?: string; description_startswith?: string;
  /** In the target or the description, any case. */
  search?: string;
  /** Measurements this probe takes part in. */
  probe_id?: number;
  /** Members of this measurement group. */
  group_id?: number;
  /** Measurements carrying every one of these tags. */
  tags?: string[];
  times?: { field: string; op: string; value: number }[];
  sort?: { field: string; desc: boolean };
};

/** A participation request as Atlas lists it. */
export type ParticipationRecord = {
  id: number; measurement: number; action: "add" | "remove"; type: string; value: string; requested: number | null;
  tags: { include?: string[]; exclude?: string[] } | null; created_at: number;
};
