// HTTP and TLS certificate measurements against local servers with a test PKI made here (root → intermediate →
// leaf): status, sizes, headers, timings in order, the chain exactly as served, alerts and timeouts.
import http from "node:http";
import https from "node:https";
import net from "node:net";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { HttpResult, HttpSpec, SslcertResult, SslcertSpec } from "../../protocol/index.ts";
import { httpGet } from "../../probe-agent/measure/http.ts";
import { sslcert } from "../../probe-agent/measure/sslcert.ts";
import { makeTestPki, type TestPki } from "./pki.ts";

const ctx = { msmId: 10_000_009, probeId: 1_000_001, step: null, lts: 0, allowPrivate: true, signal: new AbortController().signal };
const BODY = Buffer.alloc(20_000, "v");

function app(req: http.IncomingMessage, res: http.ServerResponse): void {
  if (req.url === "/slow") return; // never answers
  if (req.url !== "/hello?x=1") {
    res.writeHead(404, { "Content-Type": "text/plain" }).end("not here\n");
    return;
  }
  res.writeHead(200, { "Content-Type": "application/octet-stream", "X-Vantage": "test", "X-Seen-Host": req.headers.host ?? "", "X-Seen-UA": req.headers["user-agent"] ?? "" });
  // The body in three writes spaced apart, so read timings have something to show.
  res.write(BODY.subarray(0, 5000));
  setTimeout(() => { res.write(BODY.subarray(5000, 10_000)); setTimeout(() => res.end(BODY.subarray(10_000)), 30); }, 30);
}

describe("http and sslcert against local servers", () => {
  let pki: TestPki;
  let plain: http.Server, secure: https.Server, picky: https.Server;
  const port = (s: net.Server) => (s.address() as AddressInfo).port;

  beforeAll(async () => {
    pki = makeTestPki("DNS:localhost,DNS:www.example.test,IP:127.0.0.1");
    plain = http.createServer(app);
    secure = https.createServer({ key: pki.key, cert: `${pki.leaf}\n${pki.intermediate}\n` }, app);
    // Speaks only h2: a client offering http/1.1 gets the fatal alert no_application_protocol (120).
    picky = https.createServer({ key: pki.key, cert: `${pki.leaf}\n${pki.intermediate}\n`, ALPNProtocols: ["h2"] }, app);
    await Promise.all([plain, secure, picky].map((s) => new Promise<void>((r) => s.listen(0, "127.0.0.1", r))));
  });
  afterAll(async () => {
    for (const s of [plain, secure, picky]) { s.closeAllConnections(); s.close(); }
  });

  const get = (over: Record<string, unknown>) => httpGet(HttpSpec.parse({ type: "http", af: 4, target: "127.0.0.1", ...over }), ctx);

  it("GET over HTTP: status, sizes, header lines and timings in order", async () => {
    const r = await get({ port: port(plain), path: "/hello", query_string: "x=1", header_bytes: 2048, more_extended_timing: true });
    expect(HttpResult.parse(r)).toEqual(r);
    expect(r.uri).toBe(`http://127.0.0.1:${port(plain)}/hello?x=1`);
    const f = r.result[0]!;
    expect(f).toMatchObject({ af: 4, method: "GET", dst_addr: "127.0.0.1", src_addr: "127.0.0.1", res: 200, ver: "1.1", bsize: 20_000 });
    expect(f.header![0]).toBe("HTTP/1.1 200 OK");
    expect(f.header).toContain("X-Vantage: test");
    expect(f.header).toContain(`X-Seen-Host: 127.0.0.1:${port(plain)}`);
    expect(f.header).toContain("X-Seen-UA: RIPE Atlas: https://atlas.ripe.net/");
    expect(f.hsize).toBe(f.header!.reduce((n, l) => n + l.length + 2, 2));
    expect(f.ttc!).toBeLessThanOrEqual(f.ttfb!);
    expect(f.ttfb!).toBeLessThanOrEqual(f.rt!);
    expect(f.rt!).toBeGreaterThanOrEqual(60); // the server spaced its writes 30 + 30 ms apart
    const offsets = f.readtiming!.map((x) => x.o);
    expect(offsets[0]).toBe(0);
    expect(offsets).toEqual([...offsets].sort((a, b) => a - b));
    expect(f.readtiming![f.readtiming!.length - 1]!.t).toBeGreaterThanOrEqual(60);
  });

  it("HTTPS with SNI, a 404, HEAD, a truncated body, and header bytes limited", async () => {
    const s = (await get({ https: true, target: "localhost", port: port(secure), path: "/hello", query_string: "x=1", header_bytes: 40 })).result[0]!;
    expect(s).toMatchObject({ res: 200, bsize: 20_000 });
    expect(s.header).toEqual(["HTTP/1.1 200 OK"]);
    expect((await get({ port: port(plain), path: "/missing" })).result[0]).toMatchObject({ res: 404, bsize: 9 });
    expect((await get({ port: port(plain), path: "/hello", query_string: "x=1", method: "HEAD" })).result[0]).toMatchObject({ res: 200, bsize: 0 });
    expect((await get({ port: port(plain), path: "/hello", query_string: "x=1", max_bytes_read: 1000 })).result[0]).toMatchObject({ res: 200, bsize: 1000 });
  });

  it("reports a server that never answers as a timeout, and a closed port as an error", async () => {
    const slow = (await get({ port: port(plain), path: "/slow", timeout: 1000 })).result[0]!;
    expect(slow.err).toBe("timeout after 1000 ms");
    const closed = net.createServer();
    await new Promise<void>((r) => closed.listen(0, "127.0.0.1", r));
    const unused = port(closed);
    closed.close();
    expect((await get({ port: unused })).result[0]!.err).toMatch(/ECONNREFUSED/);
  });

  it("sslcert: version, cipher, timings and the chain exactly as served, leaf first", async () => {
    const r = await sslcert(SslcertSpec.parse({ type: "sslcert", af: 4, target: "127.0.0.1", port: port(secure), hostname: "www.example.test" }), ctx);
    expect(SslcertResult.parse(r)).toEqual(r);
    expect(r).toMatchObject({ msm_name: "SSLCert", dst_name: "127.0.0.1", dst_addr: "127.0.0.1", dst_port: String(port(secure)), method: "TLS", ver: "1.3" });
    expect(r.server_cipher).toMatch(/^0x130[123]$/);
    expect(r.cert).toEqual([pki.leaf, pki.intermediate]);
    expect(r.ttc!).toBeGreaterThan(0);
    expect(r.ttc!).toBeLessThan(r.rt!);
  });

  it("sslcert: reports the server's alert", async () => {
    const r = await sslcert(SslcertSpec.parse({ type: "sslcert", af: 4, target: "127.0.0.1", port: port(picky) }), ctx);
    expect(r.alert).toEqual({ level: 2, description: 120 });
    expect(r.cert).toBeUndefined();
  });
});
