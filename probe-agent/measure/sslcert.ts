// sslcert: a TLS handshake with `hostname` as SNI; reports the negotiated version and cipher, time to connect and
// to complete the handshake, and the certificate chain as the server sent it (PEM, leaf first), or the alert.
import net from "node:net";
import tls from "node:tls";
import { FIRMWARE_VERSION, isIPv4, isIPv6, MEASUREMENT_CODE_VERSION, type SslcertResult, type SslcertSpec } from "../../protocol/probe.ts";
import { monotonicMs } from "../clock.ts";
import type { RunContext } from "./context.ts";
import { resolveTarget } from "./resolve.ts";
import { cipherHex, ms3, pem } from "./timing.ts";

export async function sslcert(spec: SslcertSpec, ctx: RunContext): Promise<SslcertResult> {
  const base = {
    fw: FIRMWARE_VERSION, mver: MEASUREMENT_CODE_VERSION, lts: ctx.lts, msm_id: ctx.msmId, msm_name: "SSLCert" as const,
    prb_id: ctx.probeId, timestamp: Math.floor(Date.now() / 1000), from: "", type: "sslcert" as const, af: spec.af,
    dst_name: spec.target, dst_port: String(spec.port),
  };
  const resolved = await resolveTarget(spec.target, spec.af, ctx, spec.resolve_on_probe);
  if (!resolved.ok) return { ...base, [resolved.error.startsWith("dns") ? "dnserr" : "err"]: resolved.error };
  const servername = spec.hostname ?? (isIPv4(spec.target) || isIPv6(spec.target) ? undefined : spec.target);
  const out: SslcertResult = { ...base, dst_addr: resolved.addr, method: "TLS" };
  if (resolved.ttr !== undefined) out.ttr = resolved.ttr;
  return new Promise((resolve) => {
    const t0 = monotonicMs();
    let ttc: number | undefined;
    const tcp = net.connect({ host: resolved.addr, port: spec.port, family: spec.af });
    let socket: tls.TLSSocket | null = null;
    const finish = (extra: Partial<SslcertResult>) => {
      clearTimeout(timer);
      ctx.signal.removeEventListener("abort", onAbort);
      socket?.destroy();
      tcp.destroy();
      resolve({ ...out, ...(ttc === undefined ? {} : { ttc: ms3(ttc) }), ...extra });
    };
    const timer = setTimeout(() => finish({ err: `timeout after ${spec.timeout} ms` }), spec.timeout);
    const onAbort = () => finish({ err: "cancelled" });
    ctx.signal.addEventListener("abort", onAbort);
    tcp.once("error", (e) => finish({ err: e.message }));
    tcp.once("connect", () => {
      ttc = monotonicMs() - t0;
      out.src_addr = tcp.localAddress ?? undefined;
      out.from = out.src_addr ?? "";
      // Certificates are collected, never judged: an expired or self-signed chain is a finding, not an error.
      socket = tls.connect({ socket: tcp, servername, rejectUnauthorized: false, ALPNProtocols: ["http/1.1"] });
      socket.once("secureConnect", () => {
        const rt = monotonicMs() - t0;
        const s = socket!;
        const chain: string[] = [];
        let cert: tls.DetailedPeerCertificate | undefined = s.getPeerCertificate(true);
        const seen = new Set<string>();
        while (cert?.raw && !seen.has(cert.fingerprint256)) {
          seen.add(cert.fingerprint256);
          chain.push(pem(cert.raw));
          cert = cert.issuerCertificate;
        }
        const cipher = s.getCipher();
        finish({ ver: (s.getProtocol() ?? "").replace(/^TLSv/, ""), server_cipher: cipherHex(cipher.standardName), rt: ms3(rt), cert: chain });
      });
      socket.once("error", (e: Error) => {
        // OpenSSL names a received alert "… SSL alert number N"; alerts that end a handshake are fatal (level 2).
        const alert = e.message.match(/alert number (\d+)/);
        finish(alert ? { alert: { level: 2, description: Number(alert[1]) } } : { err: e.message });
      });
    });
  });
}
