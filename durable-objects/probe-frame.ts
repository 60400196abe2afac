// A probe's WebSocket frame, read: text, at most MAX_FRAME_BYTES, JSON, and one of the protocol's probe messages —
// or the reason it is refused, naming what is wrong (sent back to the probe in a `reject`).
import { type ProbeMessage, ProbeMessage as ProbeMessageSchema } from "../protocol/index.ts";

export const MAX_FRAME_BYTES = 4 * 1024 * 1024;

export function readProbeFrame(raw: string | ArrayBuffer): { message: ProbeMessage; text: string } | { refused: string } {
  if (typeof raw !== "string") return { refused: "binary frames are not part of the protocol" };
  if (raw.length > MAX_FRAME_BYTES) return { refused: "frame too large" };
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw);
  } catch {
    return { refused: "frame is not JSON" };
  }
  const m = ProbeMessageSchema.safeParse(parsed);
  if (!m.success) {
    const issue = m.error.issues[0]!;
    return { refused: `invalid message at /${issue.path.join("/")}: ${issue.message}` };
  }
  return { message: m.data, text: raw };
}
