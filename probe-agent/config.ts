// The agent's configuration file (JSON). Trust material is pinned here: the edge's public key, which must have
// signed every assignment token the agent accepts. Nothing in it is shared between probes but the edge key.
import { readFileSync } from "node:fs";
import { z } from "zod";
import { isCidr, isTarget, MAX_ANCHORS } from "../protocol/index.ts";

export const AgentConfig = z.object({
  probe_id: z.number().int().positive(),
  /** Registration endpoints (anycast names in production), tried in random order. */
  registration_urls: z.array(z.url()).min(1),
  /** The edge's Ed25519 public key as a JWK. */
  edge_public_jwk: z.object({ kty: z.literal("OKP"), crv: z.literal("Ed25519"), x: z.string() }).loose(),
  state_dir: z.string(),
  /** Measurements run at once; the controller is told how many are free. */
  slots: z.number().int().min(1).max(256).default(8),
  /** Local/lab mode only: allow loopback and private destinations. */
  allow_private_targets: z.boolean().default(false),
  /** Prefixes this probe's host forbids measuring (e.g. its own LAN): commands aimed there get an error result. */
  forbidden_targets: z.array(z.string().refine(isCidr, "each forbidden target must be a prefix such as 192.168.0.0/16")).default([]),
  /** DNS resolvers for `use_probe_resolver` measurements; default: the nameservers of /etc/resolv.conf. */
  resolvers: z.array(z.string()).optional(),
  /** Built-in measurements (protocol/builtins.ts): anchors default to k.root-servers.net's address, as on Atlas. */
  builtins: z.object({
    enabled: z.boolean().default(true),
    anchors: z.array(z.string().refine(isTarget, "each anchor must be a host name or an address")).max(MAX_ANCHORS).default(["193.0.14.129"]),
    ping_interval_s: z.number().int().min(5).max(86_400).default(240),
    traceroute_interval_s: z.number().int().min(5).max(86_400).default(900),
  }).prefault({}),
  /** Classify the traffic of a monitored interface (needs CAP_NET_RAW); reports go to state_dir/classifier/. */
  classifier: z.object({
    interface: z.string().regex(/^[\w.:-]{1,64}$/, "interface must be a network interface name"),
    interval_s: z.number().min(1).max(86_400).default(300),
    plugins: z.array(z.enum(["port", "signature", "ndpi"])).min(1).default(["signature", "ndpi", "port"]),
  }).optional(),
  /** Seconds between status heartbeats. */
  heartbeat_s: z.number().min(1).max(600).default(30),
  /** How long a finished result waits for others to share its frame to the controller (0: send at once). */
  result_linger_ms: z.number().int().min(0).max(60_000).default(1000),
  /** Backoff between reconnects: first delay and cap, in ms (full jitter is applied). */
  backoff_ms: z.object({ base: z.number().min(10).default(1000), cap: z.number().min(100).default(60_000) }).default({ base: 1000, cap: 60_000 }),
});
export type AgentConfig = z.infer<typeof AgentConfig>;

export function loadConfig(path: string): AgentConfig {
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(path, "utf8"));
  } catch (e) {
    throw new Error(`cannot read agent config ${path}: ${(e as Error).message}`);
  }
  const parsed = AgentConfig.safeParse(raw);
  if (!parsed.success) {
    const i = parsed.error.issues[0]!;
    throw new Error(`agent config ${path}: /${i.path.join("/")}: ${i.message}`);
  }
  return parsed.data;
}
