// A controller's part in a signed agent release's rollout (the brain's rollouts.ts decides it): which of its probes
// are offered the release, and which probes' reports on it count.
import type { ProbeMessage } from "../protocol/index.ts";
import { inRollout, type ReleaseOffer } from "../protocol/release.ts";
import type { ProbeAttachment } from "./probe-attachment.ts";

/** The release this controller's probes are offered, with the share of probes the rollout has reached. */
export type ReleaseTarget = ReleaseOffer & { percent: number };

/** The offer for a probe in the rollout's share that says (in its hello) it runs another version; null otherwise. */
export function releaseOfferFor(a: ProbeAttachment, target: ReleaseTarget | undefined): ReleaseOffer | null {
  if (!target || !a.version || a.version === target.version || !inRollout(a.probe_id, target.version, target.percent)) return null;
  const { percent: _, ...offer } = target;
  return offer;
}

/**
 * Why a probe's release report does not count (null: it does). Only a report on the release this probe is being
 * offered counts: a probe cannot halt (or pass) a rollout it is not part of, or report on a version it was never given.
 */
export function refusedReleaseReport(probeId: number, m: Extract<ProbeMessage, { type: "release_status" }>, target: ReleaseTarget | undefined): string | null {
  if (target && target.rollout === m.rollout && target.version === m.version && inRollout(probeId, target.version, target.percent)) return null;
  return `release_status for rollout ${m.rollout} (${m.version}): no such release was offered to this probe`;
}
