// Target resolution on the probe, and the refusal of non-public destinations unless the probe runs in local mode:
// the one place every measurement type gets the address it then sends to, so the address policy
// (protocol/address-policy.ts) is applied to exactly the address the packets go to, after any name lookup.
import { lookup } from "node:dns";
import { inCidr, judgeAddress, parseAddress } from "../../protocol/probe.ts";
import { monotonicMs } from "../clock.ts";
import type { RunContext } from "./context.ts";

export type Resolved = { ok: true; addr: string; ttr?: number } | { ok: false; error: string };

/**
 * Resolves a target to an address of family `af` (timing the lookup when `timed`), refusing non-public addresses
 * outside local mode and any address in a prefix the probe's host forbids.
 */
export async function resolveTarget(target: string, af: 4 | 6, ctx: Pick<RunContext, "allowPrivate" | "forbidden">, timed: boolean): Promise<Resolved> {
  let addr: string;
  let ttr: number | undefined;
  const literal = parseAddress(target);
  if (literal) {
    if (literal.family !== af) return { ok: false, error: `address family mismatch: af ${af} for ${target}` };
    addr = literal.address;
  } else {
    const t0 = monotonicMs();
    try {
      // node:dns rather than node:dns/promises, which loads four more modules into every agent.
      addr = await new Promise<string>((resolve, reject) => lookup(target, { family: af, verbatim: true }, (e, address) => (e ? reject(e) : resolve(address))));
    } catch (e) {
      return { ok: false, error: `dns resolution failed: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}` };
    }
    if (timed) ttr = Math.round((monotonicMs() - t0) * 1000) / 1000;
  }
  const verdict = judgeAddress(addr);
  if (!verdict) return { ok: false, error: `destination ${addr} is not an address` };
  if (!ctx.allowPrivate && !verdict.public) return { ok: false, error: `destination ${verdict.reason}: not a public address` };
  const forbidden = ctx.forbidden?.find((p) => inCidr(verdict.address, p));
  if (forbidden) return { ok: false, error: `destination ${addr} is in ${forbidden}, which this probe's host forbids` };
  return ttr === undefined ? { ok: true, addr: verdict.address } : { ok: true, addr: verdict.address, ttr };
}
