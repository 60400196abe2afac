// The frames a probe sends its controller (docs/protocol.md), which the controller validates: hello, status,
// results (Atlas results, each with the probe's seq) and release_status. The probe agent only builds them (by
// these types) and never imports the schemas (probe-agent/build.ts checks): the results' schemas cost memory.
import * as z from "zod/mini";
import { intIn } from "./atlas.ts";
import { Result } from "./results.ts";

/**
 * A result as the probe submits it. `seq` is the probe's own result counter: unique, strictly increasing in the
 * order the probe sends, so the pair (probe id, seq) identifies a result and one high-water mark per probe lets
 * the controller store each result exactly once however often it is resent.
 */
export const Submission = z.object({
  seq: z.int().check(z.positive()),
  result: Result,
});
export type Submission = z.output<typeof Submission>;

/**
 * A submission as a results frame carries it: the frame is checked as a whole for its shape, and each result on its
 * own (Submission), so one malformed result is refused by itself and the others in its frame are still stored.
 */
const FrameSubmission = z.object({ seq: z.int().check(z.positive()), result: z.unknown() });
export type FrameSubmission = z.output<typeof FrameSubmission>;

/** The most measurement slots a probe may claim (the agent's own limit, probe-agent/config.ts). */
export const MAX_SLOTS = 256;

export const ProbeMessage = z.discriminatedUnion("type", [
  z.object({ type: z.literal("hello"), agent: z.string().check(z.maxLength(100)), slots: intIn(1, MAX_SLOTS), free_slots: intIn(0, MAX_SLOTS), running: z.array(z.int()).check(z.maxLength(10_000)) }),
  z.object({ type: z.literal("status"), free_slots: intIn(0, MAX_SLOTS) }),
  z.object({ type: z.literal("results"), results: z.array(FrameSubmission).check(z.minLength(1), z.maxLength(1000)) }),
  /** How a release offered to this probe went: running (healthy), refused (not signed as pinned) or rolled back. */
  z.object({
    type: z.literal("release_status"), rollout: z.int().check(z.positive()), version: z.string().check(z.maxLength(64)),
    state: z.enum(["running", "refused", "rolled_back"]), detail: z.string().check(z.maxLength(500)),
  }),
]);
export type ProbeMessage = z.output<typeof ProbeMessage>;

