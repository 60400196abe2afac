// The probe agent: registers (challenge → signed proof → assignment token signed by the pinned edge key), keeps one
// outbound WebSocket to its controller, runs what it is given within its slots, spools every result on disk until
// the controller acknowledges it, and reconnects with exponential backoff and full jitter. It listens on no port.
import http from "node:http";
import https from "node:https";
import WebSocket from "ws";
import {
  type Assignment, ControllerMessage, type ProbeMessage, type RegisterResponse, RegisterResponse as RegisterResponseSchema,
  type Result, runSeconds, SUBPROTOCOL,
} from "../protocol/probe.ts";
import { monotonicMs } from "./clock.ts";
import type { AgentConfig } from "./config.ts";
import { CrashGuard } from "./crash-guard.ts";
import { type Identity, loadIdentity, signChallenge, verifyEdgeToken } from "./identity.ts";
import { Builtins, type RunOptions } from "./builtins.ts";
import type { DataSources } from "./data-sources.ts";
import { errorResult, runMeasurement } from "./measure/index.ts";
import type { Releases } from "./release.ts";
import { RefusedResults } from "./refused.ts";
import { Schedule } from "./schedule.ts";
import { Spool } from "./spool.ts";
import { AGENT_VERSION } from "./version.ts";

export type Log = (level: "info" | "warn" | "error", msg: string) => void;

const MAX_FRAME_RESULTS = 200;
const MAX_FRAME_TEXT = 1 << 20;
/**
 * Results sent on a connection and not yet acknowledged, at most: after an outage the backlog goes out as the
 * controller acknowledges it, a window at a time (read from the journal), not onto the socket all at once.
 */
const MAX_IN_FLIGHT = 2_000;
/** Slot changes within this window are reported to the controller in one status frame. */
const STATUS_COALESCE_MS = 50;
/**
 * Results finished within this window share one durable journal write (never longer than results linger before they
 * are sent, so it delays nothing): a commit per result cost two thread-pool round trips and their event-loop turns.
 */
const SPOOL_COMMIT_MS = 100;
/** A run may take this much longer than its spec allows before it is cut off. */
const RUN_GRACE_S = 10;
/** Why a run was aborted. */
const STOPPED = "stopped", DEADLINE = "deadline";

/**
 * Exponential backoff with full jitter (uniform in [0, min(cap, base·2^attempt))): a deploy closes every probe's
 * socket at once, and jitter spreads their return over the whole window instead of synchronised waves.
 */
export function backoffDelay(attempt: number, base: number, cap: number, random: () => number = Math.random): number {
  return random() * Math.min(cap, base * 2 ** Math.min(attempt, 30));
}

/**
 * The seconds a controller that refused a connection asks the probe to wait before trying again with the same
 * token, or 0: a busy controller (503 with Retry-After, at most 5 minutes heeded) spent nothing, and any other
 * refusal means the token will not do (the probe registers for a new one).
 */
export function busyFor(status: number, retryAfter: string | undefined): number {
  const seconds = status === 503 && retryAfter !== undefined && /^\d+$/.test(retryAfter.trim()) ? Number(retryAfter) : 0;
  return Math.min(seconds, 300);
}

/**
 * One HTTP request with node:http(s), the body read whole (at most `maxBytes`). Not fetch(): the first fetch loads
 * undici and compiles its HTTP parser to WebAssembly, about 14 MB of RSS for two requests per connection.
 */
export function httpRequest(url: URL, o: { method: "GET" | "POST"; json?: unknown; timeoutMs: number; maxBytes?: number }): Promise<{ status: number; body: Buffer }> {
  const data = o.json === undefined ? undefined : JSON.stringify(o.json);
  const maxBytes = o.maxBytes ?? 1 << 20;
  return new Promise((resolve, reject) => {
    const req = (url.protocol === "https:" ? https : http).request(url, {
      method: o.method, timeout: o.timeoutMs,
      headers: data === undefined ? {} : { "Content-Type": "application/json", "Content-Length": Buffer.byteLength(data) },
    }, (res) => {
      const chunks: Buffer[] = [];
      let bytes = 0;
      res.on("data", (c: Buffer) => {
        if ((bytes += c.length) > maxBytes) req.destroy(new Error(`answer larger than ${maxBytes} bytes`));
        else chunks.push(c);
      });
      res.on("error", reject);
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks) }));
    });
    req.on("timeout", () => req.destroy(new Error(`no answer within ${o.timeoutMs / 1000} s`)));
    req.on("error", reject);
    req.end(data);
  });
}

/** POSTs JSON; the answer's JSON ({} when it is not JSON: the status says what happened). */
export async function postJson(url: URL, body: unknown, timeoutMs: number): Promise<{ status: number; json: unknown }> {
  const res = await httpRequest(url, { method: "POST", json: body, timeoutMs });
  let json: unknown = {};
  try { json = JSON.parse(res.body.toString("utf8")); } catch { /* not JSON */ }
  return { status: res.status, json };
}

export class Agent {
  private readonly identity: Identity;
  private readonly spool: Spool;
  private ws: WebSocket | null = null;
  private stopped = false;
  private attempt = 0;
  /** Runs in flight, by measurement: aborted when the measurement is stopped or the agent stops. */
  private readonly inFlight = new Map<number, Set<AbortController>>();
  private lastSync: number | null = null;
  /** What the controller said in its welcome: whether this edge lets probes aim at private targets (local mode). */
  private edgeAllowsPrivate = false;
  /** Set while the controller has asked this probe to wait before sending more results (reject with retry_after). */
  private holdTimer: NodeJS.Timeout | null = null;
  private sentUpTo = 0;
  private heartbeat: NodeJS.Timeout | null = null;
  private statusTimer: NodeJS.Timeout | null = null;
  private lingerTimer: NodeJS.Timeout | null = null;
  /** Results stored since the last frame was sent. */
  private unsent = 0;
  private readonly builtins: Builtins;
  /** Results the controller refused, kept for the host to see (refused.ts). */
  readonly refused: RefusedResults;
  private readonly crashGuard: CrashGuard;
  /** When each measurement runs, within the slots (schedule.ts). */
  private readonly schedule: Schedule;
  /** The classifier's reports and the DNS statistics, when the config asks for them (loaded then). */
  private dataSources: DataSources | null = null;
  private reconnectTimer: NodeJS.Timeout | null = null;
  private readonly config: AgentConfig;
  private readonly log: Log;
  private readonly releases: Releases | null;
  /** The registration endpoint that answered last: releases are downloaded from it. */
  private edge: URL | null = null;
  /** Whether the controller answered this connection's hello. */
  private helloAnswered = false;
  /** Where this probe is connected (its registration's answer). */
  private reg: RegisterResponse | null = null;
  /**
   * A token the controller gave to reconnect to it once without registering (`resume`): after a deploy drops every
   * socket, the fleet comes back without all of it going through the registry. Kept until the controller refuses it
   * or it expires; an edge that cannot be reached leaves it unused.
   */
  private resume: RegisterResponse | null = null;
  /** No reconnection before this (unix ms): what a busy controller's Retry-After asked for. */
  private notBefore = 0;

  constructor(config: AgentConfig, log: Log, releases: Releases | null = null) {
    this.config = config;
    this.log = log;
    this.releases = releases;
    this.identity = loadIdentity(config.state_dir);
    this.spool = new Spool(config.state_dir, Math.min(SPOOL_COMMIT_MS, config.result_linger_ms), (m) => this.log("error", m));
    this.refused = new RefusedResults(config.state_dir, (m) => this.log("error", m));
    this.crashGuard = new CrashGuard(config.state_dir, AGENT_VERSION, (m) => this.log("warn", m));
    this.schedule = new Schedule({ slots: config.slots, probeId: config.probe_id, run: (a, opts) => this.run(a, opts), ended: () => this.reportSlots() });
    this.builtins = new Builtins(config.builtins, (a, opts) => this.schedule.enqueue(a, opts));
  }

  start(): void {
    this.log("info", `probe ${this.config.probe_id}: starting with ${this.spool.size} spooled result(s)`);
    this.builtins.start();
    if (this.config.classifier || this.config.dnsstats) {
      void import("./data-sources.ts").then(({ DataSources }) => {
        if (this.stopped) return;
        this.dataSources = new DataSources(this.config, this.log, (r) => this.store(r), () => this.lts());
        this.dataSources.start();
      });
    }
    this.releases?.startProbation(() => this.stop());
    void this.connect();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    for (const runs of this.inFlight.values()) for (const run of runs) run.abort(STOPPED);
    this.builtins.stop();
    await this.dataSources?.stop();
    this.schedule.clear();
    if (this.heartbeat) clearInterval(this.heartbeat);
    if (this.statusTimer) clearTimeout(this.statusTimer);
    if (this.lingerTimer) clearTimeout(this.lingerTimer);
    if (this.holdTimer) clearTimeout(this.holdTimer);
    if (this.reconnectTimer) clearTimeout(this.reconnectTimer);
    this.ws?.close(1000, "agent stopping");
    this.crashGuard.close();
    await this.spool.close();
  }

  // ── registration and connection ────────────────────────────────────────────────────────────────────────────

  private async register(): Promise<RegisterResponse> {
    const urls = [...this.config.registration_urls].sort(() => Math.random() - 0.5);
    let lastError: unknown;
    for (const base of urls) {
      try {
        const post = async (path: string, body: unknown) => {
          const res = await postJson(new URL(path, base), body, 15_000);
          const json = res.json as { error?: { detail?: string } };
          if (res.status !== 200) throw new Error(`${path}: ${res.status} ${json.error?.detail ?? ""}`.trim());
          return json;
        };
        const { nonce } = (await post("/probe/v1/challenge", { probe_id: this.config.probe_id })) as { nonce: string };
        const proof = signChallenge(this.identity, this.config.probe_id, nonce);
        const reg = RegisterResponseSchema.parse(await post("/probe/v1/register", { probe_id: this.config.probe_id, proof }));
        // Only an edge holding the pinned key can have signed this token.
        verifyEdgeToken(reg.token, this.config.edge_public_jwk, { audience: `controller:${reg.shard}`, subject: String(this.config.probe_id) });
        this.edge = new URL(base);
        return reg;
      } catch (e) {
        lastError = e;
        this.log("warn", `registration via ${base} failed: ${(e as Error).message}`);
      }
    }
    throw lastError instanceof Error ? lastError : new Error("registration failed");
  }

  private async connect(): Promise<void> {
    if (this.stopped) return;
    let reg: RegisterResponse;
    const resume = this.resume && this.resume.expires > Date.now() / 1000 + 30 ? this.resume : null;
    this.resume = resume;
    if (resume) {
      reg = resume;
    } else {
      try {
        reg = await this.register();
      } catch {
        return this.reconnectLater();
      }
    }
    this.reg = reg;
    const ws = new WebSocket(reg.websocket_url, SUBPROTOCOL, {
      headers: { Authorization: `Bearer ${reg.token}` }, handshakeTimeout: 15_000, maxPayload: 16 * 1024 * 1024, perMessageDeflate: false,
    });
    this.ws = ws;
    let alive = true;
    ws.on("open", () => {
      // The token is spent (each opens one socket); the controller sends the next resume token.
      if (this.resume === resume) this.resume = null;
      this.attempt = 0;
      this.sentUpTo = 0;
      this.helloAnswered = false;
      this.log("info", `connected to controller ${reg.shard}${resume ? " (resumed, without registering)" : ""}`);
      this.send({ type: "hello", agent: `vantage-probe/${AGENT_VERSION}`, slots: this.config.slots, free_slots: this.freeSlots(), running: this.schedule.scheduled() });
      this.flushSpool();
      this.heartbeat = setInterval(() => {
        if (!alive) { ws.terminate(); return; }
        alive = false;
        ws.ping();
        this.send({ type: "status", free_slots: this.freeSlots() });
      }, this.config.heartbeat_s * 1000);
    });
    ws.on("pong", () => { alive = true; });
    ws.on("message", (data) => { alive = true; this.onMessage(String(data)); });
    ws.on("unexpected-response", (_req, res) => {
      const busy = busyFor(res.statusCode ?? 0, res.headers["retry-after"]);
      this.log("warn", `controller refused the connection${resume ? " with its resume token" : ""}: HTTP ${res.statusCode}${busy ? `, busy: retrying in ${busy} s` : ""}`);
      if (busy) this.notBefore = Date.now() + busy * 1000;
      // A refused resume token (used, expired, the probe disconnected by the operator): register next time.
      else if (this.resume === resume) this.resume = null;
      // With this listener ws leaves the handshake open (until its 15 s timeout): end it, so the retry comes now.
      res.resume();
      ws.terminate();
    });
    ws.on("error", (e) => this.log("warn", `controller connection error: ${e.message}`));
    ws.on("close", (code, reason) => {
      if (this.heartbeat) clearInterval(this.heartbeat);
      this.heartbeat = null;
      if (this.ws === ws) this.ws = null;
      if (!this.stopped) {
        this.log("warn", `controller connection closed (${code} ${reason.toString()}); reconnecting`);
        this.reconnectLater();
      }
    });
  }

  private reconnectLater(): void {
    if (this.stopped || this.reconnectTimer) return;
    const delay = Math.max(backoffDelay(this.attempt++, this.config.backoff_ms.base, this.config.backoff_ms.cap), this.notBefore - Date.now());
    this.reconnectTimer = setTimeout(() => { this.reconnectTimer = null; void this.connect(); }, delay);
  }

  private send(m: ProbeMessage): boolean {
    return this.sendText(JSON.stringify(m));
  }

  private sendText(text: string): boolean {
    if (this.ws?.readyState !== WebSocket.OPEN) return false;
    this.ws.send(text);
    return true;
  }

  /**
   * Offers the spooled results not yet sent on this connection, oldest first, as many as the in-flight window has
   * room for, in `results` frames made of the submissions' journalled JSON (each result is serialised once).
   */
  private flushSpool(): void {
    this.unsent = 0;
    if (this.holdTimer) return;
    const room = MAX_IN_FLIGHT - this.spool.countUpTo(this.sentUpTo);
    const pending = room > 0 ? this.spool.pending(this.sentUpTo, room) : [];
    // Frames of at most MAX_FRAME_RESULTS results and MAX_FRAME_TEXT characters (a data source's records are tens of
    // KB each; the controller refuses a frame over 4 MiB whole).
    for (let i = 0; i < pending.length;) {
      let end = i, text = 0;
      while (end < pending.length && end - i < MAX_FRAME_RESULTS && (end === i || text + pending[end]!.json.length <= MAX_FRAME_TEXT)) text += pending[end++]!.json.length;
      const chunk = pending.slice(i, end);
      if (!this.sendText(`{"type":"results","results":[${chunk.map((e) => e.json).join(",")}]}`)) return;
      this.sentUpTo = chunk[chunk.length - 1]!.seq;
      i = end;
    }
  }

  /**
   * The controller stored nothing past its last ack because this probe sent more than its allowance: everything
   * after the ack is offered again once `seconds` have passed, and nothing is sent before.
   */
  private holdResults(seconds: number): void {
    this.sentUpTo = Math.min(this.sentUpTo, this.spool.ackedUpTo);
    if (this.holdTimer) clearTimeout(this.holdTimer);
    this.holdTimer = setTimeout(() => { this.holdTimer = null; this.flushSpool(); }, seconds * 1000);
  }

  private onMessage(text: string): void {
    let raw: unknown;
    try {
      raw = JSON.parse(text);
    } catch {
      this.log("warn", "ignored a controller frame that is not JSON");
      return;
    }
    const parsed = ControllerMessage.safeParse(raw);
    if (!parsed.success) {
      const issue = parsed.error.issues[0]!;
      const reason = `invalid command at /${issue.path.join("/")}: ${issue.message}`;
      this.log("warn", reason);
      this.refuseCommand(raw, reason);
      return;
    }
    const m = parsed.data;
    switch (m.type) {
      case "welcome":
        this.lastSync = monotonicMs();
        // Private targets need both the host's word (config) and the edge's (local mode): a deployed edge says no.
        this.edgeAllowsPrivate = m.allow_private_targets;
        this.builtins.setResolverCheck(m.resolver_check ?? null);
        return;
      case "resume":
        try {
          // Only the edge's key makes a token the controller will take: one that does not verify is not kept.
          if (!this.reg) throw new Error("not registered");
          verifyEdgeToken(m.token, this.config.edge_public_jwk, { audience: `controller:${this.reg.shard}`, subject: String(this.config.probe_id) });
          // Said once a connection (renewals every half hour are not news): a cut from now on reconnects here directly.
          if (!this.resume) this.log("info", `holding a resume token until ${new Date(m.expires * 1000).toISOString()}: a reconnect needs no registration`);
          this.resume = { ...this.reg, token: m.token, expires: m.expires };
        } catch (e) {
          this.log("warn", `resume token refused: ${(e as Error).message}`);
        }
        return;
      case "status_ack":
        this.lastSync = monotonicMs();
        // The controller answered the hello: this version works end to end.
        if (!this.helloAnswered) {
          this.helloAnswered = true;
          this.releases?.healthy();
          this.sendReleaseReports();
        }
        return;
      case "release":
        if (this.releases && this.edge) {
          const { type: _, ...offer } = m;
          void this.releases.offer(offer, this.edge, () => this.stop()).then(() => this.sendReleaseReports(), (e: unknown) => this.log("error", `release ${m.version}: ${(e as Error).message}`));
        }
        return;
      case "measure":
        return this.schedule.accept(m.assignment, (msm) => this.spool.holds(msm));
      case "stop": {
        const scheduled = this.schedule.cancel(m.msm_id);
        const runs = this.inFlight.get(m.msm_id);
        for (const run of runs ?? []) run.abort(STOPPED);
        if (scheduled || runs) this.log("info", `measurement ${m.msm_id} stopped`);
        return;
      }
      case "ack":
        this.spool.ack(m.upto);
        // A backlog held back by the in-flight window goes on now (new results wait for their linger timer).
        if (!this.lingerTimer && this.spool.hasAfter(this.sentUpTo)) this.flushSpool();
        return;
      case "reject":
        this.log("warn", `controller refused ${m.seq === null ? "a message" : `result ${m.seq}`}: ${m.reason}`);
        if (m.seq !== null) {
          const dropped = this.spool.drop(m.seq);
          void this.refused.record(m.seq, m.reason, dropped ? JSON.stringify((JSON.parse(dropped.json) as { result: unknown }).result) : null);
        }
        else if (m.retry_after) this.holdResults(m.retry_after);
        return;
    }
  }

  /** Tells the controller how releases offered to this probe went (kept on disk until a connection takes them). */
  private sendReleaseReports(): void {
    if (!this.releases || this.ws?.readyState !== WebSocket.OPEN) return;
    for (const r of this.releases.takeReports()) this.send({ type: "release_status", ...r });
  }

  // ── measurements ───────────────────────────────────────────────────────────────────────────────────────────

  /**
   * Tells the controller the free slots soon: runs finishing together (a round of one-offs) give one status frame,
   * not one each.
   */
  private reportSlots(): void {
    this.statusTimer ??= setTimeout(() => {
      this.statusTimer = null;
      this.send({ type: "status", free_slots: this.freeSlots() });
    }, STATUS_COALESCE_MS);
  }

  private freeSlots(): number {
    return this.schedule.free;
  }

  private lts(): number {
    return this.lastSync === null ? -1 : Math.floor((monotonicMs() - this.lastSync) / 1000);
  }

  /**
   * A measurement command that fails validation: if it names a measurement and a type, the user gets an error
   * result saying why (the controller only accepts it for a measurement it really gave this probe).
   */
  private refuseCommand(raw: unknown, reason: string): void {
    const a = (raw as { type?: unknown; assignment?: { msm_id?: unknown; interval?: unknown; spec?: { type?: unknown; af?: unknown; target?: unknown } } })?.assignment;
    if ((raw as { type?: unknown })?.type !== "measure" || !a || typeof a.msm_id !== "number" || !Number.isInteger(a.msm_id) || a.msm_id <= 0) return;
    if (typeof a.spec?.type !== "string") return;
    const result = errorResult({ type: a.spec.type, af: a.spec.af, target: a.spec.target },
      { msmId: a.msm_id, probeId: this.config.probe_id, lts: this.lts(), step: typeof a.interval === "number" ? a.interval : null }, reason);
    if (result) this.store(result);
  }

  /**
   * Spools a result and offers it to the controller once it is durable — in a frame with the results that follow it
   * within result_linger_ms (or as soon as a frame is full): the edge writes a few SQLite rows per frame, whatever
   * its size, so one result per frame would cost ~100× more per result (docs/benchmarks.md).
   */
  private store(result: Result): void {
    this.spool.add(result).then(() => {
      if (++this.unsent >= MAX_FRAME_RESULTS) this.flushSpool();
      else this.lingerTimer ??= setTimeout(() => { this.lingerTimer = null; this.flushSpool(); }, this.config.result_linger_ms);
    }, (e: unknown) => this.log("error", (e as Error).message));
  }

  private async run(a: Assignment, opts: RunOptions = {}): Promise<void> {
    const held = this.crashGuard.refusal(a.msm_id);
    if (held) {
      const result = errorResult(a.spec, { msmId: a.msm_id, probeId: this.config.probe_id, lts: this.lts(), step: a.interval }, held);
      if (result) this.store(result);
      return;
    }
    // One controller per run, aborted by a stop (nothing is reported) or by its deadline (what it measured by then
    // is): one timer per run, not AbortSignal.timeout + AbortSignal.any, which cost a signal each and weak tracking.
    const stopper = new AbortController();
    const runs = this.inFlight.get(a.msm_id) ?? new Set();
    this.inFlight.set(a.msm_id, runs.add(stopper));
    const deadline = setTimeout(() => stopper.abort(DEADLINE), (runSeconds(a.spec) + RUN_GRACE_S) * 1000);
    let completed = false;
    this.crashGuard.started(a.msm_id);
    try {
      const result = await runMeasurement(a.spec, {
        msmId: a.msm_id, probeId: this.config.probe_id, step: a.interval, lts: this.lts(),
        allowPrivate: opts.allowPrivate ?? (this.config.allow_private_targets && this.edgeAllowsPrivate), forbidden: this.config.forbidden_targets,
        resolvers: this.config.resolvers,
        signal: stopper.signal,
      });
      // A stopped measurement, or an agent shutting down, reports nothing for the interrupted run.
      completed = true;
      if (stopper.signal.reason === STOPPED || this.stopped) return;
      opts.onResult?.(result);
      this.store(result);
    } catch (e) {
      this.log("error", `measurement ${a.msm_id} failed to run: ${(e as Error).message}`);
    } finally {
      this.crashGuard.finished(a.msm_id, completed);
      clearTimeout(deadline);
      runs.delete(stopper);
      if (runs.size === 0) this.inFlight.delete(a.msm_id);
    }
  }
}
