// http: one HTTP/1.1 request to the target (plain or TLS) through Node's own client; reports status, header and
// body sizes, total time, and with extended timing the time to connect, to the first byte, and when each chunk of
// the body arrived. Result format: Atlas "HTTPGet" (reference/atlas.md §2).
import http from "node:http";
import https from "node:https";
import type { Socket } from "node:net";
import { FIRMWARE_VERSION, type HttpResult, type HttpSpec, isIPv6, MEASUREMENT_CODE_VERSION } from "../../protocol/probe.ts";
import { monotonicMs } from "../clock.ts";
import type { RunContext } from "./context.ts";
import { resolveTarget } from "./resolve.ts";
import { ms3 } from "./timing.ts";

const DEFAULT_USER_AGENT = "RIPE Atlas: https://atlas.ripe.net/";

export function uriOf(spec: HttpSpec): string {
  const scheme = spec.https ? "https" : "http";
  const port = spec.port && spec.port !== (spec.https ? 443 : 80) ? `:${spec.port}` : "";
  const host = isIPv6(spec.target) ? `[${spec.target}]` : spec.target;
  return `${scheme}://${host}${port}${spec.path}${spec.query_string ? `?${spec.query_string.replace(/^\?/, "")}` : ""}`;
}

type Fetch = HttpResult["result"][number];

export async function httpGet(spec: HttpSpec, ctx: RunContext): Promise<HttpResult> {
  const uri = uriOf(spec);
  const base = {
    fw: FIRMWARE_VERSION, mver: MEASUREMENT_CODE_VERSION, lts: ctx.lts, msm_id: ctx.msmId, msm_name: "HTTPGet" as const,
    prb_id: ctx.probeId, timestamp: Math.floor(Date.now() / 1000), from: "", type: "http" as const, uri,
  };
  const fetchBase: Fetch = { af: spec.af, method: spec.method };
  const resolved = await resolveTarget(spec.target, spec.af, ctx, spec.resolve_on_probe);
  if (!resolved.ok) {
    return { ...base, result: [{ ...fetchBase, ...(resolved.error.startsWith("dns") ? { dnserr: resolved.error } : { err: resolved.error }) }] };
  }
  const port = spec.port ?? (spec.https ? 443 : 80);
  const one = await new Promise<Fetch>((resolve) => {
    const t0 = monotonicMs();
    const out: Fetch = { ...fetchBase, dst_addr: resolved.addr };
    const readtiming: { o: number; t: number }[] = [];
    let bsize = 0;
    let settled = false;
    const finish = (extra: Partial<Fetch>) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      ctx.signal.removeEventListener("abort", onAbort);
      req.destroy();
      if (spec.more_extended_timing) out.readtiming = readtiming;
      resolve({ ...out, ...extra });
    };
    const mod = spec.https ? https : http;
    const hostHeader = `${isIPv6(spec.target) ? `[${spec.target}]` : spec.target}${port !== (spec.https ? 443 : 80) ? `:${port}` : ""}`;
    const req = mod.request({
      host: resolved.addr, port, family: spec.af, method: spec.method, agent: false,
      path: `${spec.path}${spec.query_string ? `?${spec.query_string.replace(/^\?/, "")}` : ""}`,
      headers: { Host: hostHeader, "User-Agent": spec.user_agent ?? DEFAULT_USER_AGENT, Connection: "close" },
      ...(spec.https ? { servername: spec.target, rejectUnauthorized: false } : {}),
    });
    const timer = setTimeout(() => finish({ err: `timeout after ${spec.timeout} ms` }), spec.timeout);
    const onAbort = () => finish({ err: "cancelled" });
    ctx.signal.addEventListener("abort", onAbort);
    req.once("socket", (socket: Socket) => {
      // ttc: the TCP connection (as in sslcert); for https the TLS handshake then shows in ttfb.
      socket.once("connect", () => {
        out.src_addr = socket.localAddress;
        if (spec.extended_timing || spec.more_extended_timing) out.ttc = ms3(monotonicMs() - t0);
      });
      socket.once("data", () => {
        if (spec.extended_timing || spec.more_extended_timing) out.ttfb = ms3(monotonicMs() - t0);
      });
    });
    req.once("error", (e) => finish({ err: e.message }));
    req.once("response", (res) => {
      const statusLine = `HTTP/${res.httpVersion} ${res.statusCode} ${res.statusMessage ?? ""}`.trimEnd();
      const lines = [statusLine];
      for (let i = 0; i < res.rawHeaders.length; i += 2) lines.push(`${res.rawHeaders[i]}: ${res.rawHeaders[i + 1]}`);
      out.res = res.statusCode;
      out.ver = res.httpVersion;
      out.hsize = lines.reduce((n, l) => n + Buffer.byteLength(l) + 2, 2);
      if (spec.header_bytes > 0) {
        const header: string[] = [];
        let budget = spec.header_bytes;
        for (const l of lines) {
          if (Buffer.byteLength(l) + 2 > budget) break;
          header.push(l);
          budget -= Buffer.byteLength(l) + 2;
        }
        out.header = header;
      }
      res.on("data", (chunk: Buffer) => {
        readtiming.push({ o: bsize, t: ms3(monotonicMs() - t0) });
        bsize += chunk.length;
        if (spec.max_bytes_read !== undefined && bsize >= spec.max_bytes_read) {
          finish({ bsize: spec.max_bytes_read, rt: ms3(monotonicMs() - t0) });
        }
      });
      res.once("end", () => finish({ bsize, rt: ms3(monotonicMs() - t0) }));
      res.once("error", (e) => finish({ bsize, err: e.message }));
    });
    req.end();
  });
  return { ...base, from: one.src_addr ?? "", result: [one] };
}
