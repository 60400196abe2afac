// The controller's pure parts on their own: reading a probe's frame (probe-frame.ts) and its part in a release's
// rollout (probe-release.ts).
import { describe, expect, it } from "vitest";
import { inRollout } from "../../protocol/release.ts";
import type { ProbeAttachment } from "../../durable-objects/probe-attachment.ts";
import { MAX_FRAME_BYTES, readProbeFrame } from "../../durable-objects/probe-frame.ts";
import { refusedReleaseReport, releaseOfferFor, type ReleaseTarget } from "../../durable-objects/probe-release.ts";

describe("a probe's frame, read", () => {
  it("takes a protocol message and refuses binary, oversized, non-JSON and unknown frames, saying which", () => {
    const status = JSON.stringify({ type: "status", free_slots: 3 });
    expect(readProbeFrame(status)).toEqual({ message: { type: "status", free_slots: 3 }, text: status });
    expect(readProbeFrame(new ArrayBuffer(4))).toEqual({ refused: "binary frames are not part of the protocol" });
    expect(readProbeFrame(" ".repeat(MAX_FRAME_BYTES + 1))).toEqual({ refused: "frame too large" });
    expect(readProbeFrame("{")).toEqual({ refused: "frame is not JSON" });
    expect(readProbeFrame(JSON.stringify({ type: "status", free_slots: "many" }))).toEqual({ refused: expect.stringMatching(/^invalid message at \/free_slots: /) });
    expect(readProbeFrame(JSON.stringify({ type: "take-over" }))).toEqual({ refused: expect.stringMatching(/^invalid message at \/type: /) });
  });
});

describe("a controller's part in a release's rollout", () => {
  const target: ReleaseTarget = { version: "1.2.0", sha256: "ab".repeat(32), size: 1000, signature: "sig", rollout: 7, path: "/releases/1.2.0", percent: 50 };
  const probe = (probe_id: number, version?: string) => ({ probe_id, version } as ProbeAttachment);
  // Probes on either side of the 50 % line for this version.
  const ids = Array.from({ length: 100 }, (_, i) => i + 1);
  const inside = ids.find((id) => inRollout(id, "1.2.0", 50))!, outside = ids.find((id) => !inRollout(id, "1.2.0", 50))!;

  it("offers the release (without the share) to a probe in the share that runs another version, and only to it", () => {
    const { percent: _, ...offer } = target;
    expect(releaseOfferFor(probe(inside, "1.1.0"), target)).toEqual(offer);
    expect(releaseOfferFor(probe(inside, "1.2.0"), target)).toBeNull();  // already runs it
    expect(releaseOfferFor(probe(inside), target)).toBeNull();  // no hello yet: its version is unknown
    expect(releaseOfferFor(probe(outside, "1.1.0"), target)).toBeNull();
    expect(releaseOfferFor(probe(inside, "1.1.0"), undefined)).toBeNull();
  });

  it("counts a report only on the release and rollout this probe was offered", () => {
    const report = (rollout: number, version: string) => ({ type: "release_status" as const, rollout, version, state: "running" as const, detail: "" });
    expect(refusedReleaseReport(inside, report(7, "1.2.0"), target)).toBeNull();
    expect(refusedReleaseReport(inside, report(8, "1.2.0"), target)).toMatch(/rollout 8 \(1\.2\.0\): no such release was offered/);
    expect(refusedReleaseReport(inside, report(7, "1.3.0"), target)).toMatch(/no such release/);
    expect(refusedReleaseReport(outside, report(7, "1.2.0"), target)).toMatch(/no such release/);
    expect(refusedReleaseReport(inside, report(7, "1.2.0"), undefined)).toMatch(/no such release/);
  });
});
