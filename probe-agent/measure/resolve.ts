// Target resolution on the probe, and the refusal of non-public destinations unless the probe runs in local mode.
import { lookup } from "node:dns/promises";
import { isIPv4, isIPv6, isNonPublicAddress } from "../../protocol/index.ts";

export type Resolved = { ok: true; addr: string; ttr?: number } | { ok: false; error: string };

export async function resolveTarget(target: string, af: 4 | 6, allowPrivate: boolean, timed: boolean): Promise<Resolved> {
  let addr = target;
  let ttr: number | undefined;
  if (!isIPv4(target) && !isIPv6(target)) {
    const t0 = performance.now();
    try {
      addr = (await lookup(target, { family: af, verbatim: true })).address;
    } catch (e) {
      return { ok: false, error: `dns resolution failed: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}` };
    }
    if (timed) ttr = Math.round((performance.now() - t0) * 1000) / 1000;
  } else if ((af === 4) !== isIPv4(target)) {
    return { ok: false, error: `address family mismatch: af ${af} for ${target}` };
  }
  if (!allowPrivate && isNonPublicAddress(addr)) return { ok: false, error: `destination ${addr} is not a public address` };
  return ttr === undefined ? { ok: true, addr } : { ok: true, addr, ttr };
}
