// RIPE's own `ripe-atlas` command line, unmodified (../shared/clients), as an Atlas user runs it on their first day:
// against the local edge's HTTPS front with real probes, as separate processes, guarded so that nothing leaves the
// machine (fixtures/ripe_atlas_guarded.py). Every command here failed, or quietly answered something else, before
// Vantage took Atlas's `latest`, nulls, system tags and list filters.
import { execFile, execFileSync, spawn } from "node:child_process";
import { createHash, X509Certificate } from "node:crypto";
import { existsSync, mkdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { promisify } from "node:util";
import dnsPacket from "dns-packet";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { BUILTIN_ANCHOR_PING, BUILTIN_ANCHOR_TRACEROUTE } from "../../protocol/index.ts";
import { ROOT, startLocalSystem, type LocalSystem } from "../../scripts/local.ts";
import { freePort, icmpUnavailable, tempDir, until } from "./system.ts";

const CLIENTS = join(ROOT, "..", "shared", "clients");
const GUARD = join(import.meta.dirname, "fixtures", "ripe_atlas_guarded.py");
const SAGAN = join(import.meta.dirname, "fixtures", "sagan_check.py");
const COUSTEAU = join(import.meta.dirname, "fixtures", "cousteau23_client.py");

type SaganView = {
  msm_id: number; prb_id: number; type: string; parsed: boolean; exception?: string; is_malformed: boolean; is_error: boolean;
  error_message: string | null; warnings: string[];
  values: {
    packets_sent?: number; packets_received?: number; destination_address?: string; total_hops?: number;
    responses?: { rcode?: string | null; answers?: unknown[] | null; response_id?: number; code?: number; is_malformed?: boolean }[];
    certificates?: { checksum_sha256: string }[];
  };
};

/** What fixtures/cousteau23_client.py saw of the edge through cousteau 2.3. */
type CousteauView = {
  version: string; create: { ok: boolean; response: { measurements: number[] } }; results: number[];
  results_window: { ok: boolean; probes: number[] }; latest: { ok: boolean; probes: number[] };
  stream: { backlog: number[]; live: number[]; events: string[] }; periodic_create: { ok: boolean };
  change: { ok: boolean; response: { added: number[] } }; tags_after_add: string[]; tags_after_remove: string[];
  stop: { ok: boolean; status: string }; measurement: Record<string, unknown>; probe: Record<string, unknown>;
  probe_list: number[]; measurement_list: number[]; measurement_count: number; anchors: unknown[];
};

/** What RIPE's sagan (unmodified, ../shared/clients) makes of each result, from fixtures/sagan_check.py. */
function sagan(results: unknown[]): Promise<SaganView[]> {
  return new Promise((resolve, reject) => {
    const child = spawn("/usr/bin/python3", ["-S", SAGAN, CLIENTS], { stdio: ["pipe", "pipe", "pipe"] });
    let out = "", err = "";
    child.stdout.on("data", (d) => (out += d));
    child.stderr.on("data", (d) => (err += d));
    child.on("error", reject);
    child.on("exit", (code) => (code === 0 ? resolve(JSON.parse(out) as SaganView[]) : reject(new Error(`sagan_check.py exited ${code}: ${err}`))));
    child.stdin.end(JSON.stringify(results));
  });
}

function unavailable(): string | null {
  if (!existsSync(join(CLIENTS, "ripe-atlas-tools", "scripts", "ripe-atlas"))) return `RIPE's clients are not at ${CLIENTS}`;
  try {
    execFileSync("/usr/bin/python3", ["-c", "import IPy, tzlocal, typing_extensions, dateutil, pytz, requests, websocket, yaml, cryptography"], { stdio: "ignore" });
  } catch {
    return "the Python packages ripe-atlas needs are missing (npm test installs them when run as root)";
  }
  return icmpUnavailable();
}
const why = unavailable();
if (why) throw new Error(`the ripe-atlas test cannot run: ${why}`);

describe("RIPE's ripe-atlas command line against the local edge", () => {
  let system: LocalSystem;
  let state: string;
  let env: NodeJS.ProcessEnv;
  const ra = async (...args: string[]): Promise<{ ok: boolean; out: string }> => {
    // Asynchronously: the HTTPS front lives in this process and must keep serving while the client runs.
    try {
      const { stdout, stderr } = await promisify(execFile)("/usr/bin/python3", ["-S", GUARD, CLIENTS, ...args], { env, encoding: "utf8", timeout: 120_000 });
      return { ok: true, out: stdout + stderr };
    } catch (e) {
      const x = e as { stdout?: string; stderr?: string };
      return { ok: false, out: `${x.stdout ?? ""}${x.stderr ?? ""}` };
    }
  };
  const created = (out: string) => Number(/Measurement (\d+) was created/.exec(out)?.[1] ?? NaN);
  /** The measurement of each type the tests made, for the report test. */
  const made = new Map<string, number>();
  const results = async (id: number) => ((await (await fetch(`${system.edge.url}/api/v2/measurements/${id}/results/`)).json()) as unknown[]).length;

  beforeAll(async () => {
    state = tempDir("ripe-atlas");
    system = await startLocalSystem({ stateDir: state, port: await freePort(), httpsPort: 0 });
    const config = join(state, "ripe-atlas-config"), cache = join(state, "ripe-atlas-cache");
    mkdirSync(config, { recursive: true });
    mkdirSync(cache, { recursive: true });
    env = { ...process.env, XDG_CONFIG_HOME: config, XDG_CACHE_HOME: cache, REQUESTS_CA_BUNDLE: join(state, "tls-cert.pem"),
      WEBSOCKET_CLIENT_CA_BUNDLE: join(state, "tls-cert.pem"), PYTHONDONTWRITEBYTECODE: "1" };
    for (const setting of [`ripe-ncc.endpoint=${system.front.url}`, `ripe-ncc.stream-base-url=${system.edge.url}`, `authorisation.create=${system.key}`]) {
      const r = await ra("configure", "--set", setting);
      expect(r.ok, r.out).toBe(true);
    }
    // The client asks for system-ipv4-works on every measurement: wait until each probe's built-in pings gave it.
    await until("every probe to be tagged system-ipv4-works", async () => {
      const listed = (await (await fetch(`${system.edge.url}/api/v2/probes/?tags=system-ipv4-works`)).json()) as { count: number };
      return listed.count === system.probes.length;
    }, 120_000, 500);
  }, 240_000);
  afterAll(async () => {
    await system?.stop();
  });

  it("measures a plain ping and reports it (latest as Atlas answers it)", async () => {
    const r = await ra("measure", "ping", "--target", "127.0.0.1", "--probes", "3", "--no-report");
    expect(r.ok, r.out).toBe(true);
    const id = created(r.out);
    made.set("ping", id);
    await until("the ping's results", async () => (await results(id)) === 3, 60_000, 250);
    const report = await ra("report", String(id));
    expect(report.ok, report.out).toBe(true);
    for (const p of system.probes) expect(report.out).toContain(`via probe #${p.id}`);
    expect(report.out).toMatch(/9 packets transmitted, 9 received, 0(\.0)?% loss/);
    const info = await ra("measurement-info", String(id));
    expect(info.out).toMatch(/Type\s+Ping/);
    expect(info.out).toMatch(/Status\s+(Ongoing|Stopped)/);
  }, 120_000);

  it("measures the other five types with their options, and DNS over TLS as such (never as plain DNS)", async () => {
    const types: [string[], RegExp][] = [
      [["traceroute", "--target", "127.0.0.1", "--max-hops", "3", "--protocol", "UDP"], /Probe #\d+/],
      [["dns", "--target", "127.0.0.1", "--query-argument", "example.net", "--query-type", "AAAA", "--set-do-bit"], /Probe #\d+/],
      // (The local edge itself answers the HTTP measurement.)
      [["http", "--target", "127.0.0.1", "--port", new URL(system.edge.url).port, "--path", "/api/v2/probes/", "--timing-verbosity", "1"], /GET http:\/\/127\.0\.0\.1/],
      [["sslcert", "--target", "127.0.0.1", "--port", new URL(system.front.url).port], /Probe #\d+/],
      [["ntp", "--target", "127.0.0.1", "--packets", "2", "--timeout", "500"], /./],
    ];
    for (const [args, reported] of types) {
      const r = await ra("measure", ...args, "--probes", "3", "--no-report");
      expect(r.ok, `${args.join(" ")}: ${r.out}`).toBe(true);
      const id = created(r.out);
      made.set(args[0]!, id);
      await until(`${args[0]}'s results`, async () => (await results(id)) === 3, 60_000, 250);
      const report = await ra("report", String(id));
      expect(report.ok, `${args[0]}: ${report.out}`).toBe(true);
      expect(report.out).toMatch(reported);
    }
    // The probes that ran the NTP measurement to a closed port are all still connected.
    const probes = (await (await fetch(`${system.edge.url}/api/v2/probes/?status=1`)).json()) as { count: number };
    expect(probes.count).toBe(3);
    // DNS over TLS is measured as such (port 853, nothing listens there on this host), never as plain DNS on 53.
    const tls = await ra("measure", "dns", "--target", "127.0.0.1", "--query-argument", "example.net", "--tls", "--probes", "1", "--no-report");
    const tlsId = created(tls.out);
    expect(tlsId, tls.out).toBeGreaterThan(0);
    await until("the DNS over TLS result", async () => (await results(tlsId)) === 1, 60_000, 250);
    const [dot] = (await (await fetch(`${system.edge.url}/api/v2/measurements/${tlsId}/results/`)).json()) as { dst_port: string; proto: string; error?: { socket?: string } }[];
    expect(dot).toMatchObject({ dst_port: "853", proto: "TCP" });
    expect(dot!.error?.socket).toMatch(/^TLS: .*ECONNREFUSED/);
    expect((await ra("report", String(tlsId))).ok).toBe(true);
  }, 300_000);

  it("searches measurements and probes with Atlas's filters, each answering the subset it names", async () => {
    const shown = (out: string) => /Showing (\d+) of (\d+)/.exec(out)?.slice(1).map(Number);
    expect(shown((await ra("measurement-search", "--type", "ntp")).out)).toEqual([1, 1]);
    expect(shown((await ra("measurement-search", "--search", "Ping measurement")).out)).toEqual([1, 1]);
    expect(shown((await ra("measurement-search", "--af", "6")).out)).toBeUndefined();  // none: nothing to show
    expect(shown((await ra("measurement-search", "--started-after", "2000-01-01", "--field", "id", "--field", "target")).out)).toEqual([7, 7]);
    expect(shown((await ra("probe-search", "--country", "NL")).out)).toEqual([1, 1]);
    expect(shown((await ra("probe-search", "--center", "52.37,4.9", "--radius", "100")).out)).toEqual([1, 1]);
    expect(shown((await ra("probe-search", "--asnv4", "64497")).out)).toEqual([1, 1]);
    expect(shown((await ra("probe-search", "--tag", "system-ipv4-works")).out)).toEqual([3, 3]);
    const info = await ra("probe-info", String(system.probes[0]!.id));
    expect(info.ok, info.out).toBe(true);
    expect(info.out).toMatch(/Country\s+NL/);
  }, 180_000);

  it("reports with every renderer and aggregation that needs no outside host, and through an alias", async () => {
    // (dst_asn and traceroute_aspath look addresses up at RIPEstat: never run here.)
    const renderers: Record<string, string[]> = {
      ping: ["ping", "raw"], traceroute: ["traceroute", "raw"], dns: ["dns", "dns_compact", "raw"], http: ["http", "raw"],
      sslcert: ["sslcert", "ssl_consistency", "raw"], ntp: ["ntp", "raw"],
    };
    // Each probe once, in whatever order the results came (the renderers keep the API's order, which is by time).
    const probes = (format: (id: number) => string) => new RegExp(system.probes.map((p) => `(?=[^]*${format(p.id)})`).join(""));
    // The local HTTPS front's own certificate, which the sslcert measurement fetched.
    const front = new X509Certificate(readFileSync(join(state, "tls-cert.pem"))).fingerprint256;
    const shows: Record<string, RegExp> = {
      ping: probes((id) => `via probe #${id}`), traceroute: probes((id) => `Probe #${id}\\s+\\S.*\\s+1 127\\.0\\.0\\.1 `),
      dns: probes((id) => `Probe #${id}`), dns_compact: probes((id) => `Probe #${id}: `), ntp: probes((id) => `Probe #${id}`),
      sslcert: probes((id) => `Probe #${id}\\s+\\S.*\\s+Certificate:`), http: /(GET http:\/\/127\.0\.0\.1:\d+\/api\/v2\/probes\/ 127\.0\.0\.1 127\.0\.0\.1 200 [^]*){3}/,
      ssl_consistency: new RegExp(`SHA256 Fingerprint=${front}\\s+Seen by 3 probes`),
    };
    for (const [type, names] of Object.entries(renderers)) {
      const id = made.get(type)!;
      for (const renderer of names) {
        const r = await ra("report", String(id), "--renderer", renderer);
        expect(r.ok && !/Traceback|Error/.test(r.out), `${type} with ${renderer}: ${r.out}`).toBe(true);
        if (renderer === "raw") {
          // (sagan's warnings about results that report an error, on stderr, come between them.)
          const lines = r.out.trim().split("\n").filter((l) => l.startsWith("{")).map((l) => JSON.parse(l) as { msm_id: number; type: string });
          expect(lines.map((l) => [l.msm_id, l.type])).toEqual(Array(3).fill([id, type]));
        } else {
          expect(r.out, `${type} with ${renderer}`).toMatch(shows[renderer]!);
        }
      }
    }
    // Aggregated by what the probes API says of each probe: the three sites are in NL, US and JP, AS64496–64498.
    const ping = String(made.get("ping"));
    const aggregated = async (by: string) => {
      const r = await ra("report", ping, "--aggregate-by", by);
      expect(r.ok && !/Traceback/.test(r.out), `--aggregate-by ${by}: ${r.out}`).toBe(true);
      return r.out;
    };
    const byCountry = await aggregated("country");
    for (const cc of ["NL", "US", "JP"]) expect(byCountry).toContain(cc);
    const byAsn = await aggregated("asn_v4");
    for (const asn of ["64496", "64497", "64498"]) expect(byAsn).toContain(asn);
    expect(await aggregated("status")).toContain("Connected");
    expect(await aggregated("rtt-median")).toMatch(/RTT_MEDIAN: < 10\n( 48 bytes from 127\.0\.0\.1 via probe #\d+ .*\n){3}/);
    for (const by of ["prefix_v4", "asn_v6", "prefix_v6"]) await aggregated(by);
    // An alias stands for the measurement wherever an id does.
    expect((await ra("alias", "add", "measurement", ping, "loopback-ping")).ok).toBe(true);
    expect((await ra("alias", "show", "measurement", "loopback-ping")).out).toContain(ping);
    const viaAlias = await ra("report", "loopback-ping");
    for (const p of system.probes) expect(viaAlias.out).toContain(`via probe #${p.id}`);
    expect((await ra("measurement-info", "loopback-ping")).out).toMatch(/Type\s+Ping/);
  }, 240_000);

  it("cousteau 2.3 (the library under the CLI): every request class once, and AtlasStream over wss with the backlog and live results", async () => {
    const server = new URL(system.front.url).host;
    const ids = system.probes.map((p) => p.id).sort((a, b) => a - b);
    const { stdout } = await promisify(execFile)("/usr/bin/python3", ["-S", COUSTEAU, CLIENTS, server, system.key, ids.join(",")],
      { env, encoding: "utf8", timeout: 200_000 });
    const out = JSON.parse(stdout) as CousteauView;
    expect(out.version).toMatch(/^2\.3\./);
    expect(out.create.ok, JSON.stringify(out.create)).toBe(true);
    expect(out.results).toEqual(ids);
    expect(out.results_window).toEqual({ ok: true, probes: [ids[0]] });
    expect(out.latest).toEqual({ ok: true, probes: [ids[0]] });
    // Every result of the one-off from the backlog, once each; then a live result of a measurement subscribed before it ran.
    expect(out.stream.backlog).toEqual(ids);
    expect(out.periodic_create.ok, JSON.stringify(out.periodic_create)).toBe(true);
    expect(out.stream.live).toEqual([ids[0]]);
    expect(out.stream.events).not.toContain("atlas_error");
    expect(out.change.ok, JSON.stringify(out.change)).toBe(true);
    expect(out.change.response.added).toEqual([ids[1]]);
    expect(out.tags_after_add).toContain("cousteau-23");
    expect(out.tags_after_remove).not.toContain("cousteau-23");
    expect(out.stop).toEqual({ ok: true, status: "Stopped" });
    expect(out.measurement).toMatchObject({ type: "ping", target: "127.0.0.1", is_oneoff: true });
    expect(out.probe).toMatchObject({ id: ids[0], status: "Connected", is_anchor: false });
    expect(out.probe_list).toEqual(ids);
    expect(out.measurement_list.length).toBe(out.measurement_count);
    expect(out.measurement_list).toContain(out.create.response.measurements[0]);
    expect(out.anchors).toEqual([]);
  }, 240_000);

  it("sagan, RIPE's result parser, reads every result the probes produced, of every type, as they were stored", async () => {
    type Raw = Record<string, unknown> & { msm_id: number; prb_id: number; type: string };
    const get = async <T>(path: string) => (await (await fetch(`${system.edge.url}${path}`)).json()) as T;
    const { results: listed } = await get<{ results: { id: number }[] }>("/api/v2/measurements/?page_size=500");
    // Built-ins too: every probe's pings and traceroutes toward the anchors.
    const ids = [...listed.map((m) => m.id), BUILTIN_ANCHOR_PING, BUILTIN_ANCHOR_TRACEROUTE];
    const stored = (await Promise.all(ids.map((id) => get<Raw[]>(`/api/v2/measurements/${id}/results/`)))).flat();
    expect(new Set(stored.map((r) => r.type))).toEqual(new Set(["ping", "traceroute", "dns", "http", "sslcert", "ntp"]));
    const parsed = await sagan(stored);
    expect(parsed).toHaveLength(stored.length);
    const failures: string[] = [];
    for (const [i, p] of parsed.entries()) {
      const raw = stored[i]!;
      const which = `${raw.type} result of msm ${raw.msm_id} from probe ${raw.prb_id}`;
      if (!p.parsed) { failures.push(`${which}: ${p.exception}`); continue; }
      if (p.is_malformed || p.values.responses?.some((r) => r.is_malformed)) failures.push(`${which}: malformed (${p.warnings.join("; ")})`);
      // An error sagan reports must be one the probe reported; a result that reports none must parse as no error.
      const reportsError = /"(error|err|dnserr)":/.test(JSON.stringify(raw)) || (raw.type === "dns" && p.values.responses?.some((r) => r.rcode !== "NOERROR"));
      if (p.is_error && !reportsError) failures.push(`${which}: sagan sees an error the result does not report: ${p.error_message}`);
      // sagan logs what it could not read (an abuf it cannot decode, say) as warnings, and only the probe's own errors may be among them.
      if (!reportsError && p.warnings.length) failures.push(`${which}: ${p.warnings.join("; ")}`);
      if (!p.is_error && /"(error|dnserr)":\{/.test(JSON.stringify(raw)) && raw.type !== "traceroute") failures.push(`${which}: its error went unseen`);
    }
    expect(failures).toEqual([]);
    // The sslcert and HTTP measurements reached the local edge: certificates and answers for sagan to read.
    expect(stored.filter((r) => r.type === "sslcert" && r.cert).length).toBeGreaterThanOrEqual(3);
    expect(parsed.filter((p) => p.type === "http" && p.values.responses?.[0]?.code === 200).length).toBeGreaterThanOrEqual(3);
    // And sagan reads the values Vantage measured.
    for (const [i, p] of parsed.entries()) {
      const raw = stored[i]!;
      if (raw.type === "ping" && raw.rcvd) expect(p.values).toMatchObject({ packets_sent: raw.sent, packets_received: raw.rcvd, destination_address: raw.dst_addr });
      if (raw.type === "traceroute") expect(p.values.total_hops).toBe((raw.result as unknown[]).length);
      if (raw.type === "sslcert" && raw.cert) {
        const der = (pem: string) => createHash("sha256").update(Buffer.from(pem.replace(/-----[A-Z ]+-----|\s/g, ""), "base64")).digest("hex");
        expect(p.values.certificates!.map((c) => c.checksum_sha256.replace(/:/g, "").toLowerCase())).toEqual((raw.cert as string[]).map(der));
      }
      if (raw.type === "http" && !(raw.result as { err?: string }[])[0]!.err) {
        expect(p.values.responses!.map((r) => r.code)).toEqual((raw.result as { res: number }[]).map((r) => r.res));
      }
      if (raw.type === "dns" && raw.result) {
        // sagan decodes abuf with its own DNS parser: the same answers as dns-packet reads from the same bytes.
        const decoded = dnsPacket.decode(Buffer.from((raw.result as { abuf: string }).abuf, "base64"));
        expect(p.values.responses![0]!.answers).toHaveLength(decoded.answers!.length);
        expect(p.values.responses![0]!.response_id).toBe(decoded.id);
      }
    }
  }, 180_000);
});
