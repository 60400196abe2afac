// Truth for the DNS statistics collector: dnsperf traffic against NSD in a test namespace, captured by tcpdump, then
// every count of every dataset compared with an independent count of the same capture by tshark, and the C-DNS
// sample read back by Python's cbor2 (checked against RFC 8618's CDDL) with each sampled pair equal to its packets.
import { execFileSync, spawn } from "node:child_process";
import { existsSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type MinuteRecord } from "../../probe-agent/dnsstats/collector.ts";
import { type DscDataset, SKIPPED, SKIPPED_SUM } from "../../protocol/dsc.ts";
import { collectFile } from "../../probe-agent/dnsstats/index.ts";
import { CAPTURE_ADDON } from "../../probe-agent/dnsstats/live.ts";
import { capture, dnsperf, queryFile, standardMix } from "./dnsstats/traffic.ts";
import { netnsUnavailable, Netns } from "./netns.ts";
import { missingPrograms, type Server, startNsd } from "./servers.ts";
import { tempDir, until } from "./system.ts";

const why = netnsUnavailable() ?? missingPrograms("nsd", "dnsperf", "tcpdump", "tshark");
const noCbor2 = (() => { try { execFileSync("/usr/bin/python3", ["-c", "import cbor2"], { stdio: "ignore" }); return null; } catch { return "python3-cbor2 is missing"; } })();
if (why) console.warn(`skipping the DNS statistics truth tests: ${why}`);

/** One DNS message as tshark decodes it. */
type Msg = {
  t: number; tUs: number; src: string; dst: string; sport: number; dport: number; tcp: boolean; v6: boolean; id: number; response: boolean;
  opcode: number; rcode: number; rd: boolean; qname: string; qnameLen: number; qtype: number; qclass: number;
  edns: number | null; dnssecOk: boolean; size: number; answered: boolean; rtUs: number | null;
};

const FIELDS = ["frame.time_epoch", "ip.src", "ipv6.src", "ip.dst", "ipv6.dst", "udp.srcport", "tcp.srcport", "udp.dstport", "tcp.dstport",
  "dns.id", "dns.flags.response", "dns.flags.opcode", "dns.flags.rcode", "dns.flags.recdesired", "dns.qry.name", "dns.qry.name.len", "dns.qry.type",
  "dns.qry.class", "dns.resp.edns0_version", "dns.resp.z.do", "udp.length", "dns.length", "dns.response_in", "dns.time"];

function tshark(pcap: string): Msg[] {
  // occurrence=a: a TCP segment can carry several messages, each field then lists one value per message.
  const out = execFileSync("tshark", ["-2", "-r", pcap, "-Y", "dns", "-T", "fields", "-E", "separator=\t", "-E", "occurrence=a", "-E", "aggregator=;", ...FIELDS.flatMap((f) => ["-e", f])], { encoding: "utf8", maxBuffer: 1 << 30 });
  return out.trim().split("\n").flatMap((line) => {
    const f = line.split("\t");
    const all = (name: string) => (f[FIELDS.indexOf(name)] ?? "").split(";");
    const tcp = all("tcp.srcport")[0] !== "";
    const [sec, frac = ""] = all("frame.time_epoch")[0]!.split(".");
    const ids = all("dns.id");
    // Per-message fields that only some messages have (OPT, response_in, dns.time) cannot be told apart when a
    // segment holds several: such frames are only dnsperf's TCP queries, which carry neither OPT nor answers.
    return ids.map((_, i) => {
      const v = (name: string) => { const vs = all(name); return (vs.length === ids.length ? vs[i] : vs[0]) ?? ""; };
      const qname = v("dns.qry.name").toLowerCase();
      return {
        t: Number(all("frame.time_epoch")[0]), tUs: Number(sec) * 1e6 + Number(frac.padEnd(9, "0").slice(0, 6)),
        src: v("ip.src") || v("ipv6.src"), dst: v("ip.dst") || v("ipv6.dst"), v6: v("ip.src") === "",
        sport: Number(v("udp.srcport") || v("tcp.srcport")), dport: Number(v("udp.dstport") || v("tcp.dstport")), tcp,
        id: Number(v("dns.id")), response: v("dns.flags.response") === "1" || v("dns.flags.response") === "True",
        opcode: Number(v("dns.flags.opcode")), rcode: Number(v("dns.flags.rcode")), rd: v("dns.flags.recdesired") === "1" || v("dns.flags.recdesired") === "True",
        qname: qname === "<root>" ? "" : qname, qnameLen: qname === "<root>" ? 0 : Number(v("dns.qry.name.len")),
        qtype: Number(v("dns.qry.type")), qclass: Number(v("dns.qry.class")),
        edns: ids.length > 1 || v("dns.resp.edns0_version") === "" ? null : Number(v("dns.resp.edns0_version")),
        dnssecOk: ids.length === 1 && (v("dns.resp.z.do") === "1" || v("dns.resp.z.do") === "True"),
        size: tcp ? Number(v("dns.length")) : Number(v("udp.length")) - 8,
        answered: ids.length === 1 ? v("dns.response_in") !== "" : all("dns.response_in").filter(Boolean).length === ids.length,
        rtUs: ids.length > 1 || v("dns.time") === "" ? null : Math.round(Number(v("dns.time")) * 1e6),
      };
    });
  });
}

/** A dataset's cells as a plain map "row|value" → count. */
function cells(d: DscDataset | undefined): Map<string, number> {
  const m = new Map<string, number>();
  if (!d) return m;
  const [d1, d2] = d.dimensions;
  for (const row of d.data) for (const c of row[d2] as { val: string; count: number }[]) m.set(`${row[d1]}|${c.val}`, c.count);
  return m;
}
function count(keys: string[]): Map<string, number> {
  const m = new Map<string, number>();
  for (const k of keys) m.set(k, (m.get(k) ?? 0) + 1);
  return m;
}
const sorted = (m: Map<string, number>) => [...m].sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
const RT = [[1_000, "<1ms"], [2_000, "1-2ms"], [5_000, "2-5ms"], [10_000, "5-10ms"], [20_000, "10-20ms"], [50_000, "20-50ms"], [100_000, "50-100ms"], [200_000, "100-200ms"], [500_000, "200-500ms"], [1_000_000, "500-1000ms"], [2_000_000, "1-2s"], [5_000_000, "2-5s"]] as const;
const rtLabel = (us: number) => RT.find(([b]) => us < b)?.[1] ?? ">=5s";
const bin = (n: number) => `${n & ~15}-${(n & ~15) + 15}`;
const subnet = (a: string) => (a.includes(":") ? "::/96" : `${a.split(".").slice(0, 3).join(".")}.0/24`);

describe.skipIf(why !== null)("DNS statistics against tshark's count of the same capture", () => {
  let ns: Netns;
  let nsd: Server;
  let dir: string;
  let pcap: string;
  let msgs: Msg[];
  let minutes: MinuteRecord[];
  let summary: Awaited<ReturnType<typeof collectFile>>;

  beforeAll(async () => {
    ns = new Netns("dstat");
    nsd = await startNsd(ns, { unlimited: true });
    dir = tempDir("dnsstats");
    pcap = join(dir, "traffic.pcap");
    queryFile(join(dir, "queries"), 20_000);
    const cap = await capture(ns, pcap);
    for (const run of standardMix(3, 1500)) dnsperf(ns, join(dir, "queries"), run);
    await cap.stop();
    msgs = tshark(pcap);
    summary = await collectFile(pcap, join(dir, "out"), { sampleRate: 0.1 }, "vantage-probe test");
    minutes = readdirSync(join(dir, "out", "minutes")).sort().map((f) => JSON.parse(readFileSync(join(dir, "out", "minutes", f), "utf8")) as MinuteRecord);
  }, 120_000);

  afterAll(async () => {
    await nsd?.stop();
    ns?.remove();
  });

  it("reads every frame of the capture and finds a DNS message in each", () => {
    expect(msgs.length).toBeGreaterThan(10_000);
    expect(summary.messages).toBe(msgs.length);
    expect(summary.malformed + summary.tcp_partial + summary.fragments).toBe(0);
    expect(minutes.reduce((n, m) => n + m.capture.messages, 0)).toBe(msgs.length);
  });

  it("counts every dataset of every minute and server exactly as tshark does", () => {
    const byMinute = new Map<string, Msg[]>();
    for (const m of msgs) {
      const key = `${Math.floor(m.t / 60) * 60 + 60}|${m.response ? m.src : m.dst}`;
      byMinute.set(key, [...(byMinute.get(key) ?? []), m]);
    }
    const seen = new Set<string>();
    for (const minute of minutes) {
      for (const s of minute.servers) {
        const key = `${minute.stop_time}|${s.server}`;
        seen.add(key);
        const all = byMinute.get(key) ?? [];
        const q = all.filter((m) => !m.response), r = all.filter((m) => m.response);
        expect(s.queries, key).toBe(q.length);
        expect(s.responses, key).toBe(r.length);
        const d = (name: string) => cells(s.datasets.find((x) => x.name === name));
        const expectDataset = (name: string, keys: string[]) => expect(sorted(d(name)), `${name} ${key}`).toEqual(sorted(count(keys)));
        expectDataset("qtype", q.map((m) => `ALL|${m.qtype}`));
        expectDataset("rcode", r.map((m) => `ALL|${m.rcode}`));
        expectDataset("opcode", q.map((m) => `ALL|${m.opcode}`));
        expectDataset("transport_vs_qtype", q.map((m) => `${m.tcp ? "tcp" : "udp"}|${m.qtype}`));
        expectDataset("dns_ip_version", q.map((m) => `${m.v6 ? "IPv6" : "IPv4"}|${m.qtype}`));
        expectDataset("edns_version", q.map((m) => `ALL|${m.edns ?? "none"}`));
        expectDataset("do_bit", q.map((m) => `ALL|${m.dnssecOk ? "set" : "clr"}`));
        expectDataset("rd_bit", q.map((m) => `ALL|${m.rd ? "set" : "clr"}`));
        expectDataset("query_size", q.map((m) => `ALL|${bin(m.size)}`));
        expectDataset("rcode_vs_replylen", r.map((m) => `${m.rcode}|${bin(m.size)}`));
        expectDataset("qtype_vs_qnamelen", q.map((m) => `${m.qtype}|${m.qnameLen}`));
        expectDataset("client_subnet", q.map((m) => `ALL|${subnet(m.src)}`));
        // Response times: tshark's own query/response matching and its dns.time.
        const times = [...q.filter((m) => m.answered).map((m) => `ALL|${rtLabel(r.find((x) => x.id === m.id && x.dst === m.src && x.dport === m.sport && x.tcp === m.tcp)?.rtUs ?? Infinity)}`),
          ...q.filter((m) => !m.answered).map(() => "ALL|unanswered")];
        expectDataset("response_time", times);
        // Top names: the 100 largest kept, the rest folded as DSC folds them (how many, and their sum).
        const names = [...count(q.map((m) => m.qname || ".")).entries()].sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1));
        const qn = d("qname");
        for (const [name, n] of names.slice(0, 100)) expect(qn.get(`ALL|${name}`), name).toBe(n);
        if (names.length > 100) {
          expect(qn.get(`ALL|${SKIPPED}`)).toBe(names.length - 100);
          expect(qn.get(`ALL|${SKIPPED_SUM}`)).toBe(names.slice(100).reduce((n, [, c]) => n + c, 0));
        }
        const tld = (n: string) => (n === "" ? "." : n.slice(n.lastIndexOf(".") + 1));
        const tlds = d("qtype_vs_tld");
        for (const [k, n] of count(q.map((m) => `${m.qtype}|${tld(m.qname)}`))) expect(tlds.get(k), k).toBe(n);
        // Distinct clients: small sets are counted exactly by the sketch's linear counting.
        expect(s.clients.estimate, key).toBe(new Set(q.map((m) => m.src)).size);
      }
    }
    expect([...seen].sort()).toEqual([...byMinute.keys()].sort());
  });

  it("had the mix it was meant to have: TCP, IPv6, EDNS, DO, NXDOMAIN, REFUSED and unanswered queries", () => {
    const q = msgs.filter((m) => !m.response), r = msgs.filter((m) => m.response);
    expect(q.some((m) => m.tcp) && q.some((m) => m.v6) && q.some((m) => m.edns === 0) && q.some((m) => m.dnssecOk)).toBe(true);
    expect(r.some((m) => m.rcode === 3) && r.some((m) => m.rcode === 5)).toBe(true);
    expect(q.filter((m) => !m.answered).length).toBeGreaterThan(10);
  });

  it.skipIf(noCbor2 !== null)("writes the sample as C-DNS that cbor2 reads and the RFC's CDDL accepts, each pair equal to its packets", () => {
    const files = readdirSync(join(dir, "out", "cdns")).map((f) => join(dir, "out", "cdns", f));
    expect(files.length).toBeGreaterThan(0);
    expect(files.every((f) => f.endsWith(".cdns.gz"))).toBe(true);
    const out = execFileSync("/usr/bin/python3", [join(import.meta.dirname, "dnsstats", "cdns_read.py"), ...files], { encoding: "utf8", maxBuffer: 1 << 28 });
    const pairs = out.trim().split("\n").map((l) => JSON.parse(l) as Record<string, unknown>);
    const queries = msgs.filter((m) => !m.response);
    // 10 % of flows, by a hash: within a few standard deviations of the expectation.
    expect(pairs.length).toBeGreaterThan(queries.length * 0.08);
    expect(pairs.length).toBeLessThan(queries.length * 0.12);
    let unanswered = 0;
    for (const p of pairs) {
      const q = queries.find((m) => m.sport === p.client_port && m.id === p.id && m.dst === p.server && m.tcp === (p.transport === "tcp") && m.tUs === p.time_us);
      expect(q, JSON.stringify(p)).toBeDefined();
      const r = msgs.find((m) => m.response && m.dport === q!.sport && m.id === q!.id && m.src === q!.dst && m.tcp === q!.tcp && m.t >= q!.t);
      // Client addresses are kept as their /24 (/96): the default keeps whole addresses on nobody's disk.
      expect(p.client).toBe(subnet(q!.src));
      expect({ qname: p.qname, qtype: p.qtype, qclass: p.qclass, size: p.query_size, rd: p.query_rd, dnssecOk: p.query_do, edns: p.edns_version, ipv6: p.ipv6 })
        .toEqual({ qname: q!.qname, qtype: q!.qtype, qclass: q!.qclass, size: q!.size, rd: q!.rd, dnssecOk: q!.dnssecOk, edns: q!.edns, ipv6: q!.v6 });
      if (q!.answered) {
        expect({ has: p.has_response, size: p.response_size, rcode: p.response_rcode, delay: p.delay_us }).toEqual({ has: true, size: r!.size, rcode: r!.rcode, delay: r!.tUs - q!.tUs });
      } else {
        unanswered++;
        expect(p.has_response).toBe(false);
      }
    }
    expect(unanswered).toBeGreaterThan(0);
  });

  it.skipIf(noCbor2 !== null)("the CDDL check fails a C-DNS file that breaks it (the reader is not a rubber stamp)", () => {
    const bad = join(dir, "bad.cdns");
    // ["C-DNS", {0: 2, 1: 0, 3: []}, []]: major version 2 and no block parameters.
    writeFileSync(bad, Buffer.from("8365432d444e53a30002010003" + "80" + "80", "hex"));
    expect(() => execFileSync("/usr/bin/python3", [join(import.meta.dirname, "dnsstats", "cdns_read.py"), bad], { stdio: "pipe" })).toThrow(/invalid C-DNS/);
  });
});

describe.skipIf(why !== null || !existsSync(CAPTURE_ADDON))("DNS statistics from an interface, live", () => {
  it("counts every query on the wire, as dnsperf saw them answered, and the capture lost nothing", async () => {
    const ns = new Netns("dlive");
    const nsd = await startNsd(ns, { unlimited: true });
    try {
      const dir = tempDir("dnsstats-live");
      queryFile(join(dir, "queries"), 2000, 5);
      const child = spawn("ip", ["netns", "exec", ns.name, process.execPath, join(import.meta.dirname, "fixtures", "dnsstats-live.ts"), "lo", dir], { stdio: ["pipe", "pipe", "inherit"] });
      let out = "";
      child.stdout!.on("data", (d) => (out += d));
      await until("the capture to start", async () => out.includes("ready"), 20_000, 50);
      const report = dnsperf(ns, join(dir, "queries"), { server: "127.0.0.1", seconds: 2, qps: 800 });
      const exited = new Promise((r) => child.once("exit", r));
      child.stdin!.end("stop\n");
      await exited;
      const { minutes, stats } = JSON.parse(out.slice(out.indexOf("{"))) as { minutes: MinuteRecord[]; stats: Record<string, number> };
      const sent = Number(report.match(/Queries sent:\s+(\d+)/)![1]);
      const completed = Number(report.match(/Queries completed:\s+(\d+)/)![1]);
      expect(completed).toBe(sent);
      const servers = minutes.flatMap((m) => m.servers);
      expect(servers.reduce((n, s) => n + s.queries, 0)).toBe(sent);
      expect(servers.reduce((n, s) => n + s.responses, 0)).toBe(completed);
      expect({ kernel_dropped: stats.kernel_dropped, batches_dropped: stats.batches_dropped }).toEqual({ kernel_dropped: 0, batches_dropped: 0 });
      const rt = new Map<string, number>();
      for (const s of servers) for (const c of (s.datasets.find((d) => d.name === "response_time")!.data[0]!["ResponseTime"] as { val: string; count: number }[])) rt.set(c.val, (rt.get(c.val) ?? 0) + c.count);
      expect(rt.get("unanswered") ?? 0).toBe(0);
      // The minutes were written on the appliance too.
      expect(readdirSync(join(dir, "dnsstats", "minutes")).length).toBe(minutes.length);
    } finally {
      await nsd.stop();
      ns.remove();
    }
  }, 60_000);
});

describe("capture files the collector is given", () => {
  const dir = tempDir("dnsstats-bad");
  /** Collects a capture made of `bytes` into an output directory of its own (`out`). */
  let out = "";
  const collect = (bytes: Buffer) => {
    const f = join(dir, `f${Math.random()}.pcap`);
    writeFileSync(f, bytes);
    out = join(dir, `out-${Math.random()}`);
    return collectFile(f, out, {}, "test");
  };
  // A pcap header (µs, Ethernet) and one record holding a UDP DNS query for example.test A from 10.0.0.1 to 10.0.0.2.
  const header = Buffer.from("d4c3b2a1020004000000000000000000ffff000001000000", "hex");
  const dns = Buffer.from("123401000001000000000000076578616d706c65047465737400" + "00010001", "hex");
  const udp = Buffer.concat([Buffer.from([0x9c, 0x40, 0, 53, 0, 8 + dns.length, 0, 0]), dns]);
  const ip = Buffer.concat([Buffer.from([0x45, 0, 0, 20 + udp.length, 0, 0, 0, 0, 64, 17, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2]), udp]);
  const frame = Buffer.concat([Buffer.alloc(12), Buffer.from([8, 0]), ip]);
  const record = (data: Buffer, sec = 1_796_684_400) => {
    const h = Buffer.alloc(16);
    h.writeUInt32LE(sec, 0); h.writeUInt32LE(0, 4); h.writeUInt32LE(data.length, 8); h.writeUInt32LE(data.length, 12);
    return Buffer.concat([h, data]);
  };

  it("counts a well-formed query, unanswered at the end of the file", async () => {
    const s = await collect(Buffer.concat([header, record(frame)]));
    expect({ packets: s.packets, messages: s.messages, minutes: s.minutes }).toEqual({ packets: 1, messages: 1, minutes: 1 });
    const m = JSON.parse(readFileSync(join(out, "minutes", "1796684460.json"), "utf8")) as MinuteRecord;
    expect(m.servers[0]!.server).toBe("10.0.0.2");
    expect(m.servers[0]!.datasets.find((d) => d.name === "response_time")!.data).toEqual([{ All: "ALL", ResponseTime: [{ val: "unanswered", count: 1 }] }]);
    expect(m.servers[0]!.datasets.find((d) => d.name === "qname")!.data).toEqual([{ All: "ALL", Qname: [{ val: "example.test", count: 1 }] }]);
  });

  it("matches each response to its own query when two clients use the same port and DNS id at once", async () => {
    // Query and response frames between 10.0.0.X:40000 and 10.0.0.2:53, DNS id 0x1234 for both clients.
    const frameOf = (client: number, response: boolean) => {
      const msg = Buffer.from(dns);
      if (response) msg[2] = 0x81, msg[3] = 0x80;
      const u = Buffer.concat([Buffer.from(response ? [0, 53, 0x9c, 0x40, 0, 8 + msg.length, 0, 0] : [0x9c, 0x40, 0, 53, 0, 8 + msg.length, 0, 0]), msg]);
      const [src, dst] = response ? [[10, 0, 0, 2], [10, 0, 0, client]] : [[10, 0, 0, client], [10, 0, 0, 2]];
      const i = Buffer.concat([Buffer.from([0x45, 0, 0, 20 + u.length, 0, 0, 0, 0, 64, 17, 0, 0, ...src, ...dst]), u]);
      return Buffer.concat([Buffer.alloc(12), Buffer.from([8, 0]), i]);
    };
    const at = (data: Buffer, usec: number) => {
      const r = record(data);
      r.writeUInt32LE(usec, 4);
      return r;
    };
    const s = await collect(Buffer.concat([header, at(frameOf(1, false), 0), at(frameOf(3, false), 100), at(frameOf(1, true), 200), at(frameOf(3, true), 5000)]));
    expect(s.messages).toBe(4);
    const m = JSON.parse(readFileSync(join(out, "minutes", "1796684460.json"), "utf8")) as MinuteRecord;
    expect(m.servers[0]!.datasets.find((d) => d.name === "response_time")!.data).toEqual([{ All: "ALL", ResponseTime: [{ val: "2-5ms", count: 1 }, { val: "<1ms", count: 1 }] }]);
  });

  it("refuses a file that is not a capture, naming it and its magic", async () => {
    await expect(collect(Buffer.from("this is not a capture at all"))).rejects.toThrow(/not a pcap or pcapng file \(magic 0x73696874\)/);
  });

  it("refuses a truncated capture, saying so, after counting what was whole", async () => {
    const whole = Buffer.concat([header, record(frame), record(frame)]);
    await expect(collect(whole.subarray(0, whole.length - 5))).rejects.toThrow(/ends inside a record \(\d+ bytes left over\): truncated file/);
  });

  it("counts a message too short to be DNS as malformed, not as a query", async () => {
    const short = Buffer.concat([Buffer.alloc(12), Buffer.from([8, 0]), Buffer.from([0x45, 0, 0, 33, 0, 0, 0, 0, 64, 17, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2]), Buffer.from([0x9c, 0x40, 0, 53, 0, 13, 0, 0, 1, 2, 3, 4, 5])]);
    const s = await collect(Buffer.concat([header, record(short), record(frame)]));
    expect({ malformed: s.malformed, messages: s.messages }).toEqual({ malformed: 1, messages: 1 });
  });
});
