// The edge's bindings and settings, as one global `Env` (an ambient declaration, as `wrangler types` makes one):
// the Durable Object classes it names are referenced from here, and no module imports a type from its own
// importers, so the objects and env.ts have no import cycle. Hand-written rather than generated because
// `wrangler types` types each [vars] entry as the literal in wrangler.toml ("false", "5000") and knows neither the
// secrets nor the settings a deployment may add; keep it in step with wrangler.toml.
/** Bindings and settings of the edge (wrangler.toml; secrets in .dev.vars locally). */
interface Env {
  BRAIN: DurableObjectNamespace<import("./brain.ts").Brain>;
  CONTROLLER: DurableObjectNamespace<import("./controller.ts").Controller>;
  /** One credit ledger per account, by account id. */
  LEDGER: DurableObjectNamespace<import("./ledger.ts").Ledger>;
  REGISTRY: DurableObjectNamespace<import("./registry.ts").Registry>;
  /** The result stream's hub (/stream/). */
  STREAM: DurableObjectNamespace<import("./stream.ts").StreamHub>;
  RESULTS: R2Bucket;
  /** Ed25519 private JWK (secret) that signs assignment tokens. */
  EDGE_PRIVATE_JWK: string;
  /** Its public half; probes pin it. */
  EDGE_PUBLIC_JWK: string;
  /** Operator credential for /admin/* (secret). */
  ADMIN_TOKEN: string;
  /** "true" only in local mode: lets measurements aim at loopback and private addresses. */
  ALLOW_PRIVATE_TARGETS?: string;
  /**
   * The resolver check (JSON `{"name", "a": [...], "aaaa": [...]}`): probes ask their own resolvers for the name, and
   * those answering exactly these addresses get Atlas's system-resolves-a/aaaa-correctly tags. Unset: not checked.
   */
  RESOLVER_CHECK?: string;
  /** Probes one controller shard accepts before it reports itself full. */
  CONTROLLER_CAPACITY?: string;
  /** Results buffered in a controller before it writes a batch to R2 ahead of the flush timer. */
  FLUSH_RESULTS?: string;
  /** Longest a result waits in a controller before its batch is written to R2 (ms). */
  FLUSH_INTERVAL_MS?: string;
  /** How long results frames wait to share one transaction in a controller before they are acknowledged (ms, default 500). */
  COMMIT_WINDOW_MS?: string;
  /** The crowd signal: distinct accounts (default 5) measuring one target within CROWD_WINDOW_S (default 600). */
  CROWD_ACCOUNTS?: string;
  CROWD_WINDOW_S?: string;
  /** Seconds within which an identical public one-off is offered for reuse (default 900). */
  REUSE_WINDOW_S?: string;
  /** Per-account quotas (brain.ts `quotas`; Atlas's defaults when unset). */
  QUOTA_CONCURRENT?: string;
  QUOTA_PROBES_PER_MEASUREMENT?: string;
  QUOTA_RESULTS_PER_DAY?: string;
  QUOTA_CREDITS_PER_DAY?: string;
  QUOTA_SAME_TARGET?: string;
  QUOTA_CREATES_PER_MINUTE?: string;
  /** What controllers accept from probes (admission.ts; its defaults when unset). */
  RESULT_CLOCK_SKEW_S?: string;
  RESULT_EXTRA_RUNS?: string;
  PROBE_RESULTS_PER_MINUTE?: string;
  PROBE_BYTES_PER_MINUTE?: string;
  /** Bytes one stream subscriber may be sent per minute before it is disconnected (default 64 MiB). */
  STREAM_MAX_BYTES_PER_MINUTE?: string;
  /** Signs bundle download links (secret); without it, a key derived from EDGE_PRIVATE_JWK. */
  BUNDLE_LINK_SECRET?: string;
  /** R2's S3 endpoint and credentials (secrets): bundle downloads then redirect to presigned URLs. */
  S3_ENDPOINT?: string;
  S3_BUCKET?: string;
  S3_REGION?: string;
  S3_ACCESS_KEY_ID?: string;
  S3_SECRET_ACCESS_KEY?: string;
}

