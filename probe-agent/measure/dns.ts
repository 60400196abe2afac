// dns: one query (with retries) to the target server, or to each of the probe's own resolvers, over UDP or TCP
// (UDP answers with TC set are asked again over TCP, as dig does), or over TLS to port 853 (RFC 7858) with `tls`.
// Messages are built and read with dns-packet; `abuf` is the exact reply on the wire, base64. Result format: Atlas
// "Tdig" (reference/atlas.md §2); DNS over TLS is reported as Atlas reports it, `proto` "TCP" and `dst_port` "853".
import dgram from "node:dgram";
import { readFileSync } from "node:fs";
import net from "node:net";
import tls from "node:tls";
import dnsPacket from "dns-packet";
import { type DnsResult, type DnsSpec, FIRMWARE_VERSION, isIPv4, isIPv6, MEASUREMENT_CODE_VERSION } from "../../protocol/probe.ts";
import { monotonicMs } from "../clock.ts";
import type { RunContext } from "./context.ts";
import { resolveTarget } from "./resolve.ts";

/** Query types dns-packet cannot name; written into the question by number. */
const EXTRA_TYPES: Record<string, number> = { SVCB: 64, HTTPS: 65 };
const NSID_OPTION = 3;
const ms3 = (x: number) => Math.round(x * 1000) / 1000;

export function buildQuery(spec: DnsSpec, id: number): Buffer {
  const name = spec.query_argument === "." ? "." : spec.query_argument.replace(/\.$/, "");
  const edns = spec.udp_payload_size !== undefined || spec.set_do_bit || spec.set_nsid_bit;
  const flags = (spec.set_rd_bit ? dnsPacket.RECURSION_DESIRED : 0) | (spec.set_cd_bit ? dnsPacket.CHECKING_DISABLED : 0);
  const query = dnsPacket.encode({
    type: "query", id, flags,
    questions: [{ type: (EXTRA_TYPES[spec.query_type] ? "A" : spec.query_type) as dnsPacket.RecordType, class: spec.query_class === "CHAOS" ? "CH" : "IN", name }],
    additionals: edns ? [{
      type: "OPT", name: ".", udpPayloadSize: spec.udp_payload_size ?? 1232, flags: spec.set_do_bit ? dnsPacket.DNSSEC_OK : 0,
      options: spec.set_nsid_bit ? [{ code: NSID_OPTION, data: Buffer.alloc(0) }] : [],
    } as unknown as dnsPacket.Answer] : [],
  });
  const extra = EXTRA_TYPES[spec.query_type];
  // The question's type sits right after its name: labels with their length bytes, plus the root's zero byte.
  const nameLength = name === "." ? 1 : name.split(".").reduce((n, label) => n + Buffer.byteLength(label) + 1, 1);
  if (extra) query.writeUInt16BE(extra, 12 + nameLength);
  return query;
}

type Exchange = { proto: "UDP" | "TCP"; src_addr?: string; result?: NonNullable<DnsResult["result"]>; error?: Record<string, string | number> };

function answer(reply: Buffer, rt: number, includeAbuf: boolean): NonNullable<DnsResult["result"]> {
  const out: NonNullable<DnsResult["result"]> = {
    rt: ms3(rt), size: reply.length, ID: reply.readUInt16BE(0), QDCOUNT: reply.readUInt16BE(4), ANCOUNT: reply.readUInt16BE(6),
    NSCOUNT: reply.readUInt16BE(8), ARCOUNT: reply.readUInt16BE(10),
  };
  if (includeAbuf) out.abuf = reply.toString("base64");
  return out;
}

type Outcome = { reply: Buffer; rt: number; src: string } | { error: Record<string, string | number> };

/** Runs one exchange until it settles, times out or is cancelled; `close` releases its socket in every case. */
function settle(timeoutMs: number, signal: AbortSignal, close: () => void, run: (done: (o: Outcome) => void) => void): Promise<Outcome> {
  return new Promise((resolve) => {
    let settled = false;
    const done = (o: Outcome) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      signal.removeEventListener("abort", onAbort);
      close();
      resolve(o);
    };
    const timer = setTimeout(() => done({ error: { timeout: timeoutMs } }), timeoutMs);
    const onAbort = () => done({ error: { socket: "cancelled" } });
    signal.addEventListener("abort", onAbort);
    run(done);
  });
}

function udpExchange(server: string, af: 4 | 6, query: Buffer, timeoutMs: number, signal: AbortSignal): Promise<Outcome> {
  const sock = dgram.createSocket(af === 6 ? "udp6" : "udp4");
  return settle(timeoutMs, signal, () => sock.close(), (done) => {
    let start = 0;
    sock.on("error", (e) => done({ error: { socket: e.message } }));
    sock.on("message", (msg) => {
      // Only the reply to this query counts; anything else arriving on the port is ignored.
      if (msg.length >= 12 && msg.readUInt16BE(0) === query.readUInt16BE(0) && (msg[2]! & 0x80)) {
        done({ reply: msg, rt: monotonicMs() - start, src: sock.address().address });
      }
    });
    sock.connect(53, server, () => {
      start = monotonicMs();
      sock.send(query);
    });
  });
}

/** DNS over TCP (RFC 1035 §4.2.2, a two-byte length before each message), or over TLS on port 853 (RFC 7858). */
function streamExchange(server: string, overTls: boolean, sni: string | undefined, query: Buffer, timeoutMs: number, signal: AbortSignal): Promise<Outcome> {
  // RFC 7858's opportunistic privacy profile, as Atlas probes measure DoT: the answer is measured whoever's
  // certificate the server shows (a measurement's target names no authentication domain to check it against).
  const sock = overTls
    ? tls.connect({ host: server, port: 853, servername: sni, rejectUnauthorized: false, ALPNProtocols: ["dot"] })
    : net.connect({ host: server, port: 53 });
  return settle(timeoutMs, signal, () => sock.destroy(), (done) => {
    let start = 0;
    let buf = Buffer.alloc(0);
    sock.on("error", (e) => done({ error: { socket: overTls ? `TLS: ${e.message}` : e.message } }));
    // rt counts from the moment the query can be sent (after the TLS handshake), as for TCP after the connect.
    sock.on(overTls ? "secureConnect" : "connect", () => {
      start = monotonicMs();
      const len = Buffer.alloc(2);
      len.writeUInt16BE(query.length);
      sock.write(Buffer.concat([len, query]));
    });
    sock.on("data", (d: Buffer) => {
      buf = Buffer.concat([buf, d]);
      if (buf.length >= 2 && buf.length >= 2 + buf.readUInt16BE(0)) {
        done({ reply: buf.subarray(2, 2 + buf.readUInt16BE(0)), rt: monotonicMs() - start, src: sock.localAddress ?? "" });
      }
    });
  });
}

/**
 * One server: the query, retried on timeout `retry` times; a truncated UDP answer is asked again over TCP. With
 * `tls` the query goes over TLS whatever `protocol` says (RIPE's client sends its UDP default beside `--tls`).
 */
async function exchange(spec: DnsSpec, server: string, af: 4 | 6, query: Buffer, signal: AbortSignal, sni?: string): Promise<Exchange> {
  let proto: "UDP" | "TCP" = spec.tls ? "TCP" : spec.protocol;
  let last: Exchange = { proto };
  const stream = () => streamExchange(server, spec.tls, sni, query, spec.timeout, signal);
  for (let attempt = 0; attempt <= spec.retry; attempt++) {
    let r = proto === "UDP" ? await udpExchange(server, af, query, spec.timeout, signal) : await stream();
    if ("reply" in r && proto === "UDP" && r.reply[2]! & 0x02) {
      proto = "TCP";
      r = await stream();
    }
    if ("reply" in r) return { proto, src_addr: r.src, result: answer(r.reply, r.rt, spec.include_abuf) };
    last = { proto, error: r.error };
    if (!("timeout" in r.error) || signal.aborted) break;
  }
  return last;
}

/** The probe's own resolvers (resolv.conf), or those its config names. */
export function probeResolvers(configured?: string[]): string[] {
  if (configured?.length) return configured;
  try {
    return readFileSync("/etc/resolv.conf", "utf8").split("\n")
      .map((l) => l.match(/^\s*nameserver\s+(\S+)/)?.[1]).filter((x): x is string => !!x).map((a) => a.replace(/%.*$/, ""));
  } catch {
    return [];
  }
}

export async function dns(spec: DnsSpec, ctx: RunContext): Promise<DnsResult> {
  const port = spec.tls ? "853" : "53";
  const proto = spec.tls ? "TCP" : spec.protocol;
  const timestamp = Math.floor(Date.now() / 1000);
  const query = buildQuery(spec, Math.floor(Math.random() * 0x10000));
  const qbuf = spec.include_qbuf ? { qbuf: query.toString("base64") } : {};
  const base = {
    fw: FIRMWARE_VERSION, mver: MEASUREMENT_CODE_VERSION, lts: ctx.lts, msm_id: ctx.msmId, msm_name: "Tdig" as const,
    prb_id: ctx.probeId, timestamp, from: "", type: "dns" as const,
  };
  if (spec.use_probe_resolver) {
    const servers = probeResolvers(ctx.resolvers).filter((a) => (spec.af === 6 ? isIPv6(a) : isIPv4(a)));
    const resultset: NonNullable<DnsResult["resultset"]> = [];
    for (const [i, server] of servers.entries()) {
      const time = Math.floor(Date.now() / 1000);
      const x = await exchange(spec, server, spec.af, query, ctx.signal);
      resultset.push({ time, lts: ctx.lts, subid: i + 1, submax: servers.length, af: spec.af, dst_addr: server, dst_port: port, ...qbuf, ...x });
    }
    if (servers.length === 0) return { ...base, af: spec.af, proto, error: { socket: `no IPv${spec.af} resolver configured on this probe` } };
    return { ...base, resultset };
  }
  const target = spec.target!;
  const resolved = await resolveTarget(target, spec.af, ctx, spec.resolve_on_probe);
  const named = isIPv4(target) || isIPv6(target) ? {} : { dst_name: target };
  if (!resolved.ok) {
    const key = resolved.error.startsWith("dns resolution failed") ? "getaddrinfo" : "socket";
    return { ...base, af: spec.af, ...named, dst_port: port, proto, ...qbuf, error: { [key]: resolved.error } };
  }
  // A named target is also the name the TLS handshake asks for (SNI), as a stub resolver configured by name would.
  const x = await exchange(spec, resolved.addr, spec.af, query, ctx.signal, "dst_name" in named ? target : undefined);
  const out: DnsResult = { ...base, af: spec.af, dst_addr: resolved.addr, ...named, dst_port: port, ...qbuf, retry: spec.retry, ...x, from: x.src_addr ?? "" };
  if (resolved.ttr !== undefined) out.ttr = resolved.ttr;
  return out;
}
