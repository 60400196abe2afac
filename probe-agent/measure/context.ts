// What every measurement run knows besides its spec.
export type RunContext = {
  msmId: number;
  probeId: number;
  /** The measurement's interval (Atlas `step`), null for a one-off. */
  step: number | null;
  /** Seconds since the probe's clock was last synchronised with its controller, -1 if never. */
  lts: number;
  /** Local/lab mode: loopback and private destinations allowed. */
  allowPrivate: boolean;
  /** Prefixes the probe's host forbids as destinations. */
  forbidden?: string[];
  /** The probe's own DNS resolvers if its config names them (else /etc/resolv.conf). */
  resolvers?: string[];
  /** Aborted when the measurement is stopped or the agent shuts down. */
  signal: AbortSignal;
};
