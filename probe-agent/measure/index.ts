// One entry point for every measurement type: the agent hands it a spec and gets an Atlas result back.
import type { MeasurementSpec, Result } from "../../protocol/index.ts";
import type { RunContext } from "./context.ts";
import { dns } from "./dns.ts";
import { httpGet } from "./http.ts";
import { ntp } from "./ntp.ts";
import { ping } from "./ping.ts";
import { sslcert } from "./sslcert.ts";
import { traceroute } from "./traceroute.ts";

export type { RunContext } from "./context.ts";

export function runMeasurement(spec: MeasurementSpec, ctx: RunContext): Promise<Result> {
  switch (spec.type) {
    case "ping": return ping(spec, ctx);
    case "traceroute": return traceroute(spec, ctx);
    case "dns": return dns(spec, ctx);
    case "ntp": return ntp(spec, ctx);
    case "http": return httpGet(spec, ctx);
    case "sslcert": return sslcert(spec, ctx);
  }
}
