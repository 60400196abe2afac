// Truth for the DNS measurement: against a real NSD in a test namespace, `abuf` must be byte-identical (but for the
// random ID) to the answer `dig` receives for the same question with the same flags.
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import dnsPacket from "dns-packet";
import type { DnsResult } from "../../protocol/index.ts";
import { netnsUnavailable, Netns, silentLink } from "./netns.ts";
import { makeTestPki } from "./pki.ts";
import { missingPrograms, type Server, startNsd, startUnbound } from "./servers.ts";

const why = netnsUnavailable() ?? missingPrograms("nsd", "dig");
if (why) console.warn(`skipping the DNS truth tests: ${why}`);

const fixture = (name: string) => join(import.meta.dirname, "fixtures", name);
/** The agent's own DNS measurement, run once inside the namespace (a query to 127.0.0.1 unless the spec says else). */
const measureIn = (ns: Netns, spec: Record<string, unknown>, ctx: Record<string, unknown> = {}) =>
  JSON.parse(ns.exec(process.execPath, [fixture("measure-once.ts"), JSON.stringify({ type: "dns", af: 4, target: "127.0.0.1", ...spec }), JSON.stringify(ctx)])) as DnsResult;
/** A DNS message's bytes (hex) without its random ID. */
const withoutId = (b64: string) => Buffer.from(b64, "base64").subarray(2).toString("hex");

describe.skipIf(why !== null)("dns against NSD, compared with dig", () => {
  let ns: Netns;
  let nsd: Server;

  beforeAll(async () => {
    ns = new Netns("dns");
    ns.ip("addr", "add", "127.0.0.2/8", "dev", "lo");
    nsd = await startNsd(ns);
  });

  afterAll(async () => {
    await nsd?.stop();
    ns?.remove();
  });

  const measure = (spec: Record<string, unknown>, ctx: Record<string, unknown> = {}) => measureIn(ns, spec, ctx);
  const dig = (args: string[]) =>
    JSON.parse(ns.exec(process.execPath, [fixture("dig-capture.ts"), "127.0.0.1", ...args])) as { query: string; answer: string; dig: string };

  it.each([
    ["A", { query_type: "A", query_argument: "www.example.test" }, ["www.example.test", "A"]],
    ["AAAA", { query_type: "AAAA", query_argument: "www.example.test" }, ["www.example.test", "AAAA"]],
    ["TXT", { query_type: "TXT", query_argument: "txt.example.test" }, ["txt.example.test", "TXT"]],
    ["SOA", { query_type: "SOA", query_argument: "example.test" }, ["example.test", "SOA"]],
    ["NXDOMAIN", { query_type: "A", query_argument: "nope.example.test" }, ["nope.example.test", "A"]],
    ["RD set", { query_type: "A", query_argument: "www.example.test", set_rd_bit: true }, ["+rec", "www.example.test", "A"]],
    ["DO bit", { query_type: "SOA", query_argument: "example.test", set_do_bit: true, udp_payload_size: 1232 }, ["+edns=0", "+bufsize=1232", "+dnssec", "example.test", "SOA"]],
    ["NSID", { query_type: "SOA", query_argument: "example.test", set_nsid_bit: true, udp_payload_size: 1232 }, ["+edns=0", "+bufsize=1232", "+nsid", "example.test", "SOA"]],
    ["TCP", { query_type: "A", query_argument: "www.example.test", protocol: "TCP" }, ["+tcp", "www.example.test", "A"]],
    ["truncated UDP → TCP", { query_type: "TXT", query_argument: "big.example.test" }, ["big.example.test", "TXT"]],
  ] as const)("%s: abuf equals what dig receives", (name, spec, args) => {
    const plain = ["+norec", "+noadflag", "+nocookie", "+time=2", "+tries=1"];
    const hasEdns = args.some((a) => a.startsWith("+edns"));
    const ref = dig([...plain, ...(hasEdns ? [] : ["+noedns"]), ...args]);
    const r = measure({ ...spec, include_qbuf: true });
    expect(r.error, JSON.stringify(r)).toBeUndefined();
    // Same question on the wire, so the server's answer must be the same bytes.
    expect(withoutId(r.qbuf!)).toBe(withoutId(ref.query));
    expect(withoutId(r.result!.abuf!)).toBe(withoutId(ref.answer));
    expect(r.result!.ID).toBe(Buffer.from(r.result!.abuf!, "base64").readUInt16BE(0));
    expect(r.result!.size).toBe(Buffer.from(r.result!.abuf!, "base64").length);
    const decoded = dnsPacket.decode(Buffer.from(r.result!.abuf!, "base64"));
    expect([r.result!.QDCOUNT, r.result!.ANCOUNT, r.result!.NSCOUNT, r.result!.ARCOUNT])
      .toEqual([decoded.questions!.length, decoded.answers!.length, decoded.authorities!.length, decoded.additionals!.length]);
    expect(r).toMatchObject({ type: "dns", msm_name: "Tdig", dst_addr: "127.0.0.1", dst_port: "53", src_addr: "127.0.0.1", af: 4 });
    expect(r.result!.rt).toBeGreaterThan(0);
    if (name === "truncated UDP → TCP") {
      expect(r.proto).toBe("TCP");
      expect(decoded.answers).toHaveLength(8);
    }
    if (name === "NXDOMAIN") expect(decoded.flags! & 0x0f).toBe(3); // RCODE 3, NXDOMAIN
    if (name === "NSID") expect(Buffer.from(r.result!.abuf!, "base64").includes(Buffer.from("vantage-test"))).toBe(true);
  });

  it("asks each of the probe's own resolvers and reports a resultset", () => {
    const r = measure({ target: undefined, use_probe_resolver: true, query_type: "A", query_argument: "www.example.test" }, { resolvers: ["127.0.0.1", "::1"] });
    expect(r.resultset).toHaveLength(1);
    expect(r.resultset![0]).toMatchObject({ subid: 1, submax: 1, dst_addr: "127.0.0.1", dst_port: "53", proto: "UDP", af: 4 });
    expect(dnsPacket.decode(Buffer.from(r.resultset![0]!.result!.abuf!, "base64")).answers![0]).toMatchObject({ type: "A", data: "192.0.2.10" });
    const v6 = measure({ af: 6, target: undefined, use_probe_resolver: true, query_type: "AAAA", query_argument: "www.example.test" }, { resolvers: ["127.0.0.1", "::1"] });
    expect(v6.resultset![0]).toMatchObject({ dst_addr: "::1", af: 6 });
  });

  it("queries over IPv6", () => {
    const r = measure({ af: 6, target: "::1", query_type: "AAAA", query_argument: "www.example.test" });
    expect(dnsPacket.decode(Buffer.from(r.result!.abuf!, "base64")).answers![0]).toMatchObject({ data: "2001:db8::10" });
  });
});

const dotWhy = netnsUnavailable() ?? missingPrograms("unbound", "dig");
if (dotWhy) console.warn(`skipping the DNS over TLS truth tests: ${dotWhy}`);

describe.skipIf(dotWhy !== null)("dns over TLS against unbound, compared with dig", () => {
  let ns: Netns;
  let unbound: Server;

  beforeAll(async () => {
    ns = new Netns("dot");
    ns.ip("addr", "add", "127.0.0.2/8", "dev", "lo");
    const pki = makeTestPki("DNS:dns.example.test,IP:127.0.0.1");
    unbound = await startUnbound(ns, { chain: `${pki.leaf}\n${pki.intermediate}\n`, key: pki.key });
  });

  afterAll(async () => {
    await unbound?.stop();
    ns?.remove();
  });

  const measure = (spec: Record<string, unknown>, ctx: Record<string, unknown> = {}) => measureIn(ns, { tls: true, ...spec }, ctx);
  const plain = ["+rec", "+noadflag", "+nocookie", "+noedns", "+time=2", "+tries=1"];

  it("port 853 speaks only TLS: plain DNS over TCP to it gets no answer", () => {
    expect(() => ns.exec("dig", ["@127.0.0.1", "-p", "853", "+tcp", ...plain, "www.example.test", "A"])).toThrow();
  });

  it.each([
    ["A", { query_type: "A", query_argument: "www.example.test" }, ["www.example.test", "A"], "192.0.2.10"],
    ["AAAA", { query_type: "AAAA", query_argument: "www.example.test" }, ["www.example.test", "AAAA"], "2001:db8::10"],
    // Longer than a UDP answer may be: whole over TLS, with no truncation and no retry.
    ["a large TXT", { query_type: "TXT", query_argument: "big.example.test" }, ["big.example.test", "TXT"], `"${"0".repeat(120)}"`],
  ] as const)("%s: abuf over TLS equals the answer dig receives over TCP, and dig +tls sees the same records", (_name, spec, args, first) => {
    // RIPE's CLI sends its UDP default beside --tls: TLS is still used.
    const r = measure({ ...spec, protocol: "UDP", set_rd_bit: true, include_qbuf: true });
    expect(r.error, JSON.stringify(r)).toBeUndefined();
    expect(r).toMatchObject({ type: "dns", msm_name: "Tdig", dst_addr: "127.0.0.1", dst_port: "853", proto: "TCP", src_addr: "127.0.0.1", af: 4 });
    const ref = JSON.parse(ns.exec(process.execPath, [fixture("dig-capture.ts"), "127.0.0.1", "+tcp", ...plain, ...args])) as { query: string; answer: string };
    expect(withoutId(r.qbuf!)).toBe(withoutId(ref.query));
    expect(withoutId(r.result!.abuf!)).toBe(withoutId(ref.answer));
    expect(r.result!.size).toBe(Buffer.from(r.result!.abuf!, "base64").length);
    expect(r.result!.rt).toBeGreaterThan(0);
    const overTls = ns.exec("dig", ["@127.0.0.1", "+tls", "+short", ...plain, ...args]).trim().split("\n");
    const answers = dnsPacket.decode(Buffer.from(r.result!.abuf!, "base64")).answers!;
    expect(answers).toHaveLength(overTls.length);
    expect(overTls[0]).toBe(first);
  });

  it("asks the probe's own resolvers over TLS", () => {
    const r = measure({ target: undefined, use_probe_resolver: true, query_type: "A", query_argument: "www.example.test", set_rd_bit: true }, { resolvers: ["127.0.0.1"] });
    expect(r.resultset![0]).toMatchObject({ dst_addr: "127.0.0.1", dst_port: "853", proto: "TCP" });
    expect(dnsPacket.decode(Buffer.from(r.resultset![0]!.result!.abuf!, "base64")).answers![0]).toMatchObject({ type: "A", data: "192.0.2.10" });
  });

  it("reports a server without DNS over TLS as an error of the exchange, not as an answer", () => {
    const r = measure({ target: "127.0.0.2", query_type: "A", query_argument: "www.example.test", timeout: 1000 });
    expect(r).toMatchObject({ dst_addr: "127.0.0.2", dst_port: "853", proto: "TCP" });
    expect(r.result).toBeUndefined();
    expect(r.error!.socket).toMatch(/^TLS: .*ECONNREFUSED/);
  });
});

describe.skipIf(netnsUnavailable() !== null)("dns to a server that never answers", () => {
  it("reports a timeout after the retries, as Atlas does", () => {
    const ns = silentLink("dnsto");
    try {
      const started = Date.now();
      const out = ns.exec(process.execPath, [fixture("measure-once.ts"),
        JSON.stringify({ type: "dns", af: 4, target: "10.9.0.2", query_type: "A", query_argument: "example.test", timeout: 300, retry: 2 })]);
      const r = JSON.parse(out) as DnsResult;
      expect(r.error).toEqual({ timeout: 300 });
      expect(r.result).toBeUndefined();
      expect(r.retry).toBe(2);
      expect(Date.now() - started).toBeGreaterThanOrEqual(900);
    } finally {
      ns.remove();
    }
  });
});
