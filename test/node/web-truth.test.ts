// HTTP and TLS timings on a real path with 20 ms of one-way delay (probe → target): time to connect is one round
// trip, the TLS 1.3 handshake one more, and the first byte of an HTTPS answer one more again.
import { type ChildProcess, spawn } from "node:child_process";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { HttpResult, SslcertResult } from "../../protocol/index.ts";
import { LinePath } from "./lab.ts";
import { netnsUnavailable } from "./netns.ts";
import { makeTestPki, type TestPki } from "./pki.ts";
import { missingPrograms } from "./servers.ts";

const why = netnsUnavailable() ?? missingPrograms("cc", "openssl");
if (why) console.warn(`skipping the HTTP/TLS timing tests: ${why}`);
const fixture = (name: string) => join(import.meta.dirname, "fixtures", name);

describe.skipIf(why !== null)("http and sslcert timings over a delayed path", () => {
  let path: LinePath;
  let server: ChildProcess;
  let pki: TestPki;
  beforeAll(async () => {
    path = await LinePath.create("wb", { delayMs: 20 });
    pki = makeTestPki("IP:10.0.3.2,DNS:www.example.test");
    writeFileSync(join(pki.dir, "chain.pem"), `${pki.leaf}\n${pki.intermediate}\n`);
    writeFileSync(join(pki.dir, "key.pem"), pki.key);
    server = spawn("ip", ["netns", "exec", path.target.name, process.execPath, fixture("https-server.ts"), join(pki.dir, "chain.pem"), join(pki.dir, "key.pem")]);
    await new Promise<void>((resolve, reject) => {
      server.stdout!.once("data", () => resolve());
      server.once("exit", (code) => reject(new Error(`server exited ${code}`)));
    });
  });
  afterAll(() => {
    server?.kill("SIGTERM");
    path?.remove();
  });

  const measure = (spec: Record<string, unknown>) => JSON.parse(path.probe.exec(process.execPath, [fixture("measure-once.ts"), JSON.stringify(spec)]));

  it("sslcert: ttc ≈ one round trip, the handshake one more; the chain as served", () => {
    const r = SslcertResult.parse(measure({ type: "sslcert", af: 4, target: path.targetAddr, hostname: "www.example.test" }));
    expect(r.cert).toEqual([pki.leaf, pki.intermediate]);
    expect(r.ttc!).toBeGreaterThanOrEqual(19);
    expect(r.ttc!).toBeLessThan(30);
    // The handshake is one round trip more (TLS 1.3), not two: under 2 × 19 ms. Its crypto comes on top, and with
    // other test files running on the same two cores it took up to 16 ms (seen: 35.975 ms in CI).
    expect(r.rt! - r.ttc!).toBeGreaterThanOrEqual(19);
    expect(r.rt! - r.ttc!).toBeLessThan(38);
  });

  it("http: ttc one round trip, first byte one more; https adds the handshake's", () => {
    const plain = HttpResult.parse(measure({ type: "http", af: 4, target: path.targetAddr, extended_timing: true })).result[0]!;
    expect(plain).toMatchObject({ res: 200, bsize: 22, src_addr: "10.0.1.2", dst_addr: "10.0.3.2" });
    expect(plain.ttc!).toBeGreaterThanOrEqual(19);
    expect(plain.ttc!).toBeLessThan(30);
    expect(plain.ttfb! - plain.ttc!).toBeGreaterThanOrEqual(19);
    expect(plain.ttfb! - plain.ttc!).toBeLessThan(35);
    const tls = HttpResult.parse(measure({ type: "http", af: 4, target: path.targetAddr, https: true, extended_timing: true })).result[0]!;
    expect(tls).toMatchObject({ res: 200, bsize: 22 });
    expect(tls.ttfb! - tls.ttc!).toBeGreaterThanOrEqual(38);
    expect(tls.ttfb! - tls.ttc!).toBeLessThan(60);
    expect(tls.rt!).toBeGreaterThanOrEqual(tls.ttfb!);
  });
});
