// What the probe agent takes from the protocol. Agent code imports this module, never index.ts: the schemas only
// the edge validates (definitions, results, the probe's own frames) then stay out of the agent's bundle, where
// building them cost about 1 MB of RSS (docs/benchmarks.md); probe-agent/build.ts fails a build that includes them.
export * from "./atlas.ts";
export * from "./messages.ts";
export * from "./net.ts";
export * from "./address-policy.ts";
export * from "./builtins.ts";
export * from "./encoding.ts";
export * from "./release.ts";
export type { DnsResult, HttpResult, NtpResult, PingResult, Result, SslcertResult, TracerouteResult } from "./results.ts";
export type { ProbeMessage, Submission } from "./probe-messages.ts";
export type { CdnsParameters, CdnsResult, DnsStatsMinute, DnsStatsResult, TrafficInterval, TrafficResult } from "./datasources.ts";
