// The agent's configuration file (JSON). Trust material is pinned here: the edge's public key, which must have
// signed every assignment token the agent accepts. Nothing in it is shared between probes but the edge key.
import { readFileSync } from "node:fs";
import * as z from "zod/mini";
import { intIn, isCidr, isTarget, MAX_ANCHORS } from "../protocol/probe.ts";

const opt = z.optional;
const IFACE = /^[\w.:-]{1,64}$/;
const def = z._default;

export const AgentConfig = z.object({
  probe_id: z.int().check(z.positive()),
  /** Registration endpoints (anycast names in production), tried in random order. */
  registration_urls: z.array(z.url()).check(z.minLength(1)),
  /** The edge's Ed25519 public key as a JWK. */
  edge_public_jwk: z.looseObject({ kty: z.literal("OKP"), crv: z.literal("Ed25519"), x: z.string() }),
  /** The release key's Ed25519 public JWK (`vantage release-keys`): only releases it signed are run. Without it, none. */
  release_public_jwk: opt(z.looseObject({ kty: z.literal("OKP"), crv: z.literal("Ed25519"), x: z.string() })),
  /** How long a new release has to reach its controller before it is rolled back. */
  release_health_s: def(intIn(5, 3600), 120),
  state_dir: z.string(),
  /** Measurements run at once; the controller is told how many are free. */
  slots: def(intIn(1, 256), 8),
  /** Local/lab mode only: allow loopback and private destinations. */
  allow_private_targets: def(z.boolean(), false),
  /** Prefixes this probe's host forbids measuring (e.g. its own LAN): commands aimed there get an error result. */
  forbidden_targets: def(z.array(z.string().check(z.refine(isCidr, "each forbidden target must be a prefix such as 192.168.0.0/16"))), []),
  /** DNS resolvers for `use_probe_resolver` measurements; default: the nameservers of /etc/resolv.conf. */
  resolvers: opt(z.array(z.string())),
  /** Built-in measurements (protocol/builtins.ts): anchors default to k.root-servers.net's address, as on Atlas. */
  builtins: z.prefault(z.object({
    enabled: def(z.boolean(), true),
    anchors: def(z.array(z.string().check(z.refine(isTarget, "each anchor must be a host name or an address"))).check(z.maxLength(MAX_ANCHORS)), ["193.0.14.129"]),
    ping_interval_s: def(intIn(5, 86_400), 240),
    traceroute_interval_s: def(intIn(5, 86_400), 900),
  }), {}),
  /**
   * Classify the traffic of a monitored interface (needs CAP_NET_RAW); reports go to state_dir/classifier/ and, with
   * `upload`, to the edge (`public`: for everybody; else for the probe's owner only).
   */
  classifier: opt(z.object({
    interface: z.string().check(z.regex(IFACE, "interface must be a network interface name")),
    interval_s: def(z.number().check(z.minimum(1), z.maximum(86_400)), 300),
    plugins: def(z.array(z.enum(["port", "signature", "ndpi"])).check(z.minLength(1)), ["signature", "ndpi", "port"]),
    upload: def(z.boolean(), true),
    public: def(z.boolean(), false),
  })),
  /**
   * DNS statistics (probe-agent/dnsstats/): packets of an interface or mirror port (libpcap, CAP_NET_RAW) and/or a
   * DNS server's dnstap on a unix socket this agent listens on. Minutes and the C-DNS sample go to
   * state_dir/dnsstats/; with `upload` the minutes (client subnets, never addresses) go to the edge, `public` or the
   * owner's only, and with `sample_upload` the sample's C-DNS blocks (`sample_public`). Full client addresses
   * (`client_addresses`) are never in the minutes uploaded; in the sample only if the host opts in to both.
   */
  dnsstats: opt(z.object({
    interface: opt(z.string().check(z.regex(IFACE, "interface must be a network interface name"))),
    filter: def(z.string().check(z.maxLength(1024)), "port 53"),
    dnstap_socket: opt(z.string().check(z.regex(/^\/[^\0]{1,200}$/, "dnstap_socket must be an absolute path"))),
    sample_rate: def(z.number().check(z.minimum(0), z.maximum(1)), 0.01),
    client_addresses: def(z.boolean(), false),
    upload: def(z.boolean(), true),
    public: def(z.boolean(), false),
    /**
     * The sample's C-DNS blocks (query names, client prefixes): uploaded for the owner by default, public if said. With
     * `client_addresses` the blocks hold whole addresses, and are uploaded only if `sample_upload` is set explicitly.
     */
    sample_upload: opt(z.boolean()),
    sample_public: def(z.boolean(), false),
  }).check(z.refine((d) => d.interface !== undefined || d.dnstap_socket !== undefined, "dnsstats needs an interface, a dnstap_socket or both"))),
  /** Seconds between status heartbeats. */
  heartbeat_s: def(z.number().check(z.minimum(1), z.maximum(600)), 30),
  /** How long a finished result waits for others to share its frame to the controller (0: send at once). */
  result_linger_ms: def(intIn(0, 60_000), 1000),
  /** Backoff between reconnects: first delay and cap, in ms (full jitter is applied). */
  backoff_ms: def(z.object({ base: def(z.number().check(z.minimum(10)), 1000), cap: def(z.number().check(z.minimum(100)), 60_000) }), { base: 1000, cap: 60_000 }),
});
export type AgentConfig = z.output<typeof AgentConfig>;

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
