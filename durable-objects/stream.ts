// The result stream (RIPE Atlas streaming protocol, `/stream/`): one Durable Object holding its subscribers'
// WebSockets (hibernation API; each socket's subscriptions in its attachment). Frames are JSON arrays
// `[event, payload]`: the client sends `atlas_subscribe` / `atlas_unsubscribe`; the hub answers `atlas_subscribed`,
// `atlas_unsubscribed`, `atlas_error`, and sends `atlas_result` (one Atlas result each) and `atlas_probestatus`.
//
// Fan-out: whenever subscriptions change, the hub tells every controller what is subscribed (before it answers
// `atlas_subscribed`), and controllers send the hub each stored frame's matching results once; the hub writes each
// result once to every socket whose subscription matches.
// So a result crosses one hop per subscriber socket, never a copy per subscriber through the DOs.
//
// Bounding what a subscriber can make the hub hold: workerd does not implement WebSocket.bufferedAmount
// (cloudflare/workerd#988; checked: undefined here), so the hub cannot see a subscriber that stops reading. It caps
// what it sends each subscriber per minute (STREAM_MAX_BYTES_PER_MINUTE, 64 MiB) and disconnects one that asks for
// more, with an `atlas_error` saying so; where bufferedAmount exists, a subscriber more than MAX_BUFFERED_BYTES
// behind is disconnected too. A subscriber that stops reading can thus queue at most the cap per minute until its
// connection dies.
import { DurableObject } from "cloudflare:workers";
import { z } from "zod";
import { MEASUREMENT_TYPES, type Result } from "../protocol/index.ts";
import { PublicMeasurements } from "./public.ts";
import { readResults } from "./results.ts";
import { controllerStub, SHARDS } from "./shards.ts";

export const STREAM_NAME = "stream";
/** A socket with more than this queued and not yet sent is too slow: dropped (where the runtime tells). */
const MAX_BUFFERED_BYTES = 4 * 1024 * 1024;
/** What one subscriber may be sent per minute unless STREAM_MAX_BYTES_PER_MINUTE says otherwise. */
const MAX_BYTES_PER_MINUTE = 64 * 1024 * 1024;
/** `sendBacklog`: results of the measurement stored in this many seconds before the subscription. */
export const BACKLOG_S = 3600;
/** Subscriptions one socket may hold. */
const MAX_SUBSCRIPTIONS = 100;
/** How long after a backlog the results sent to a socket are remembered, so live ones are not sent twice. */
const BACKLOG_OVERLAP_MS = 60_000;

const Subscribe = z.object({
  streamType: z.enum(["result", "probestatus"], { error: 'streamType must be "result" or "probestatus".' }).optional(),
  stream_type: z.enum(["result", "probestatus"], { error: 'stream_type must be "result" or "probestatus".' }).optional(),
  msm: z.coerce.number().int().positive("msm must be a measurement id.").optional(),
  prb: z.coerce.number().int().positive("prb must be a probe id.").optional(),
  type: z.enum(MEASUREMENT_TYPES, { error: `type must be one of ${MEASUREMENT_TYPES.join(", ")}.` }).optional(),
  sendBacklog: z.boolean().optional(),
  buffering: z.boolean().optional(),
}).loose();

export type Subscription = { stream: "result" | "probestatus"; msm?: number; prb?: number; type?: string };
type Attachment = { subscriptions: Subscription[] };

/** What controllers send the hub: everything subscribed, or nothing at all. */
export type Interest = { msm: number[]; prb: number[]; type: string[]; all: boolean; probestatus: boolean };

export type ProbeStatusEvent = { prb_id: number; event: "connect" | "disconnect"; timestamp: number; asn: number | null; country_code: string | null; prefix: string | null };

function matches(s: Subscription, r: Result): boolean {
  return s.stream === "result" && (s.msm === undefined || s.msm === r.msm_id) && (s.prb === undefined || s.prb === r.prb_id) &&
    (s.type === undefined || s.type === r.type);
}

const sameSubscription = (a: Subscription, b: Subscription) => a.stream === b.stream && a.msm === b.msm && a.prb === b.prb && a.type === b.type;

const resultKey = (r: Result) => `${r.msm_id}:${r.prb_id}:${r.timestamp}`;

export class StreamHub extends DurableObject<Env> {
  private interestCache: Interest | null = null;
  /**
   * Each open socket's subscriptions, read from the attachments once after a wake-up and kept in step with them, so
   * publishing a frame does not deserialize every socket's attachment.
   */
  private subscribers: Map<WebSocket, Subscription[]> | null = null;
  /** Results sent to a socket since its backlog began (the backlog and live results can overlap). */
  private readonly sentSince = new Map<WebSocket, Set<string>>();
  /** The stream carries public measurements' results only. */
  private readonly publicMeasurements = new PublicMeasurements(this.env);
  /** Bytes sent to each socket in its current minute. */
  private readonly volume = new Map<WebSocket, { since: number; bytes: number }>();

  override async fetch(request: Request): Promise<Response> {
    if (request.headers.get("Upgrade")?.toLowerCase() !== "websocket") {
      return new Response("the stream is a WebSocket: connect with Upgrade: websocket", { status: 426 });
    }
    const pair = new WebSocketPair();
    this.ctx.acceptWebSocket(pair[1]);
    this.subscribe(pair[1], []);
    return new Response(null, { status: 101, webSocket: pair[0] });
  }

  override async webSocketMessage(ws: WebSocket, raw: string | ArrayBuffer): Promise<void> {
    let frame: unknown;
    try {
      frame = JSON.parse(typeof raw === "string" ? raw : new TextDecoder().decode(raw));
    } catch {
      return this.error(ws, "frames are JSON arrays: [event, payload]");
    }
    if (!Array.isArray(frame) || typeof frame[0] !== "string") return this.error(ws, "frames are JSON arrays: [event, payload]");
    const [event, payload] = frame as [string, unknown];
    if (event !== "atlas_subscribe" && event !== "atlas_unsubscribe") {
      return this.error(ws, `unknown event "${event}": send atlas_subscribe or atlas_unsubscribe`);
    }
    const parsed = Subscribe.safeParse(payload ?? {});
    if (!parsed.success) {
      const issue = parsed.error.issues[0]!;
      return this.error(ws, `${event}: ${issue.path.length ? `${issue.path.join(".")}: ` : ""}${issue.message}`);
    }
    const p = parsed.data;
    const sub: Subscription = {
      stream: p.streamType ?? p.stream_type ?? "result",
      ...(p.msm !== undefined ? { msm: p.msm } : {}), ...(p.prb !== undefined ? { prb: p.prb } : {}), ...(p.type !== undefined ? { type: p.type } : {}),
    };
    const a = ws.deserializeAttachment() as Attachment;
    if (event === "atlas_unsubscribe") {
      this.subscribe(ws, a.subscriptions.filter((s) => !sameSubscription(s, sub)));
      await this.interestChanged();
      return void this.send(ws, ["atlas_unsubscribed", payload ?? {}]);
    }
    if (p.sendBacklog && sub.stream === "result" && sub.msm === undefined) {
      return this.error(ws, "sendBacklog needs msm: the backlog is a measurement's recent results");
    }
    if (sub.msm !== undefined && !(await this.publicMeasurements.is(sub.msm))) {
      return this.error(ws, `measurement ${sub.msm} does not exist or is not public: the stream carries public measurements only`);
    }
    if (a.subscriptions.length >= MAX_SUBSCRIPTIONS) return this.error(ws, `at most ${MAX_SUBSCRIPTIONS} subscriptions per connection`);
    if (!a.subscriptions.some((s) => sameSubscription(s, sub))) {
      this.subscribe(ws, [...a.subscriptions, sub]);
      // Every controller knows before the client is told: from atlas_subscribed on, no stored result is missed.
      await this.interestChanged();
    }
    if (p.sendBacklog) this.sentSince.set(ws, new Set());
    this.send(ws, ["atlas_subscribed", payload ?? {}]);
    if (p.sendBacklog && sub.msm !== undefined) {
      const results = await readResults(this.env, sub.msm, Math.floor(Date.now() / 1000) - BACKLOG_S, null);
      if (!results) return this.error(ws, `no measurement with id ${sub.msm}`);
      const sent = this.sentSince.get(ws)!;
      for (const r of results) {
        if (!matches(sub, r) || sent.has(resultKey(r))) continue;
        sent.add(resultKey(r));
        if (!this.send(ws, ["atlas_result", r])) return;
      }
      setTimeout(() => this.sentSince.delete(ws), BACKLOG_OVERLAP_MS);
    }
  }

  /** Sets a socket's subscriptions: its attachment (which survives hibernation) and the in-memory index. */
  private subscribe(ws: WebSocket, subscriptions: Subscription[]): void {
    ws.serializeAttachment({ subscriptions } satisfies Attachment);
    this.subscribers?.set(ws, subscriptions);
  }

  private subscriptionsBySocket(): Map<WebSocket, Subscription[]> {
    this.subscribers ??= new Map(this.ctx.getWebSockets().map((ws) => [ws, (ws.deserializeAttachment() as Attachment | null)?.subscriptions ?? []]));
    return this.subscribers;
  }

  /** Recomputes what is subscribed and tells every controller (they send only that). */
  private async interestChanged(): Promise<void> {
    this.interestCache = null;
    const interest = this.interest();
    await Promise.all(SHARDS.map((shard) => controllerStub(this.env.CONTROLLER, shard).setStreamInterest(interest)
      .catch((e: unknown) => console.error(`stream: telling ${shard.name} what is subscribed failed: ${String(e)}`))));
  }

  /** Everything any socket subscribed to, for controllers to send only what someone wants. */
  interest(): Interest {
    if (this.interestCache) return this.interestCache;
    const subs = [...this.subscriptionsBySocket().values()].flat();
    const results = subs.filter((s) => s.stream === "result");
    const interest: Interest = {
      msm: [...new Set(results.flatMap((s) => (s.msm === undefined ? [] : [s.msm])))],
      prb: [...new Set(results.flatMap((s) => (s.msm === undefined && s.prb !== undefined ? [s.prb] : [])))],
      type: [...new Set(results.flatMap((s) => (s.msm === undefined && s.prb === undefined && s.type !== undefined ? [s.type] : [])))],
      all: results.some((s) => s.msm === undefined && s.prb === undefined && s.type === undefined),
      probestatus: subs.some((s) => s.stream === "probestatus"),
    };
    return (this.interestCache = interest);
  }

  /**
   * Results a controller stored: each goes once to every socket with a matching subscription. Like Atlas's stream,
   * it carries public measurements' results only.
   */
  async publish(stored: Result[]): Promise<number> {
    const results = await this.publicMeasurements.only(stored);
    let sent = 0;
    for (const [ws, subs] of this.subscriptionsBySocket()) {
      const already = this.sentSince.get(ws);
      for (const r of results) {
        if (!subs.some((s) => matches(s, r))) continue;
        if (already) {
          if (already.has(resultKey(r))) continue;
          already.add(resultKey(r));
        }
        if (!this.send(ws, ["atlas_result", r])) break;
        sent++;
      }
    }
    return sent;
  }

  /** A probe connected or disconnected. */
  probeStatus(e: ProbeStatusEvent): void {
    for (const [ws, subs] of this.subscriptionsBySocket()) {
      if (subs.some((s) => s.stream === "probestatus" && (s.prb === undefined || s.prb === e.prb_id))) this.send(ws, ["atlas_probestatus", e]);
    }
  }

  override async webSocketClose(ws: WebSocket): Promise<void> {
    this.subscribers?.delete(ws);
    this.sentSince.delete(ws);
    this.volume.delete(ws);
    await this.interestChanged();
  }

  override async webSocketError(ws: WebSocket): Promise<void> {
    this.subscribers?.delete(ws);
    this.sentSince.delete(ws);
    this.volume.delete(ws);
    await this.interestChanged();
  }

  private error(ws: WebSocket, message: string): void {
    this.send(ws, ["atlas_error", message]);
  }


  /** Sends a frame; false (and the socket closed) when the subscriber is gone, too far behind, or asks too much. */
  private send(ws: WebSocket, frame: [string, unknown]): boolean {
    try {
      const text = JSON.stringify(frame);
      const buffered = (ws as { bufferedAmount?: unknown }).bufferedAmount;
      if (typeof buffered === "number" && buffered > MAX_BUFFERED_BYTES) {
        return this.drop(ws, `too slow: more than ${MAX_BUFFERED_BYTES} bytes waited for this subscriber`);
      }
      const limit = Number(this.env.STREAM_MAX_BYTES_PER_MINUTE) || MAX_BYTES_PER_MINUTE;
      const now = Date.now();
      const v = this.volume.get(ws);
      const used = v && now - v.since < 60_000 ? v : { since: now, bytes: 0 };
      used.bytes += text.length;
      this.volume.set(ws, used);
      if (used.bytes > limit) return this.drop(ws, `more than ${limit} bytes a minute for this subscriber; subscribe to less (a measurement, probe or type)`);
      ws.send(text);
      return true;
    } catch {
      return false;
    }
  }

  private drop(ws: WebSocket, why: string): false {
    ws.send(JSON.stringify(["atlas_error", `${why}; disconnected`]));
    ws.close(1008, "subscriber dropped");
    this.subscribers?.delete(ws);
    this.volume.delete(ws);
    this.sentSince.delete(ws);
    return false;
  }
}
