// RIPE's own `ripe-atlas` command line, unmodified (../shared/clients), as an Atlas user runs it on their first day:
// against the local edge's HTTPS front with real probes, as separate processes, guarded so that nothing leaves the
// machine (fixtures/ripe_atlas_guarded.py). Every command here failed, or quietly answered something else, before
// Vantage took Atlas's `latest`, nulls, system tags and list filters.
import { execFile, execFileSync } from "node:child_process";
import { existsSync, mkdirSync } from "node:fs";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ROOT, startLocalSystem, type LocalSystem } from "../../scripts/local.ts";
import { freePort, icmpUnavailable, tempDir, until } from "./system.ts";

const CLIENTS = join(ROOT, "..", "shared", "clients");
const GUARD = join(import.meta.dirname, "fixtures", "ripe_atlas_guarded.py");

function unavailable(): string | null {
  if (!existsSync(join(CLIENTS, "ripe-atlas-tools", "scripts", "ripe-atlas"))) return `RIPE's clients are not at ${CLIENTS}`;
  try {
    execFileSync("/usr/bin/python3", ["-c", "import IPy, tzlocal, typing_extensions, dateutil, pytz, requests, websocket, yaml"], { stdio: "ignore" });
  } catch {
    return "the Python packages ripe-atlas needs are missing (npm test installs them when run as root)";
  }
  return icmpUnavailable();
}
const why = unavailable();
if (why) throw new Error(`the ripe-atlas test cannot run: ${why}`);

describe("RIPE's ripe-atlas command line against the local edge", () => {
  let system: LocalSystem;
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
  const results = async (id: number) => ((await (await fetch(`${system.edge.url}/api/v2/measurements/${id}/results/`)).json()) as unknown[]).length;

  beforeAll(async () => {
    const state = tempDir("ripe-atlas");
    system = await startLocalSystem({ stateDir: state, port: await freePort(), httpsPort: 0 });
    const config = join(state, "ripe-atlas-config"), cache = join(state, "ripe-atlas-cache");
    mkdirSync(config, { recursive: true });
    mkdirSync(cache, { recursive: true });
    env = { ...process.env, XDG_CONFIG_HOME: config, XDG_CACHE_HOME: cache, REQUESTS_CA_BUNDLE: join(state, "tls-cert.pem"), PYTHONDONTWRITEBYTECODE: "1" };
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
    await until("the ping's results", async () => (await results(id)) === 3, 60_000, 250);
    const report = await ra("report", String(id));
    expect(report.ok, report.out).toBe(true);
    for (const p of system.probes) expect(report.out).toContain(`via probe #${p.id}`);
    expect(report.out).toMatch(/9 packets transmitted, 9 received, 0(\.0)?% loss/);
    const info = await ra("measurement-info", String(id));
    expect(info.out).toMatch(/Type\s+Ping/);
    expect(info.out).toMatch(/Status\s+(Ongoing|Stopped)/);
  }, 120_000);

  it("measures the other five types with their options, and refuses DNS over TLS by name instead of running plain DNS", async () => {
    const types: [string[], RegExp][] = [
      [["traceroute", "--target", "127.0.0.1", "--max-hops", "3", "--protocol", "UDP"], /Probe #\d+/],
      [["dns", "--target", "127.0.0.1", "--query-argument", "example.net", "--query-type", "AAAA", "--set-do-bit"], /Probe #\d+/],
      [["http", "--target", "127.0.0.1", "--path", "/x", "--timing-verbosity", "1"], /GET http:\/\/127\.0\.0\.1/],
      [["sslcert", "--target", "127.0.0.1", "--port", "8443"], /Probe #\d+/],
      [["ntp", "--target", "127.0.0.1", "--packets", "2", "--timeout", "500"], /./],
    ];
    for (const [args, reported] of types) {
      const r = await ra("measure", ...args, "--probes", "3", "--no-report");
      expect(r.ok, `${args.join(" ")}: ${r.out}`).toBe(true);
      const id = created(r.out);
      await until(`${args[0]}'s results`, async () => (await results(id)) === 3, 60_000, 250);
      const report = await ra("report", String(id));
      expect(report.ok, `${args[0]}: ${report.out}`).toBe(true);
      expect(report.out).toMatch(reported);
    }
    // The probes that ran the NTP measurement to a closed port are all still connected.
    const probes = (await (await fetch(`${system.edge.url}/api/v2/probes/?status=1`)).json()) as { count: number };
    expect(probes.count).toBe(3);
    const tls = await ra("measure", "dns", "--target", "127.0.0.1", "--query-argument", "example.net", "--tls", "--probes", "1", "--no-report");
    // (The client prints the API's error and exits 0.)
    expect(tls.out).toContain("/definitions/0/tls");
    expect(tls.out).not.toMatch(/Measurement \d+ was created/);
  }, 300_000);

  it("searches measurements and probes with Atlas's filters, each answering the subset it names", async () => {
    const shown = (out: string) => /Showing (\d+) of (\d+)/.exec(out)?.slice(1).map(Number);
    expect(shown((await ra("measurement-search", "--type", "ntp")).out)).toEqual([1, 1]);
    expect(shown((await ra("measurement-search", "--search", "Ping measurement")).out)).toEqual([1, 1]);
    expect(shown((await ra("measurement-search", "--af", "6")).out)).toBeUndefined();  // none: nothing to show
    expect(shown((await ra("measurement-search", "--started-after", "2000-01-01", "--field", "id", "--field", "target")).out)).toEqual([6, 6]);
    expect(shown((await ra("probe-search", "--country", "NL")).out)).toEqual([1, 1]);
    expect(shown((await ra("probe-search", "--center", "52.37,4.9", "--radius", "100")).out)).toEqual([1, 1]);
    expect(shown((await ra("probe-search", "--asnv4", "64497")).out)).toEqual([1, 1]);
    expect(shown((await ra("probe-search", "--tag", "system-ipv4-works")).out)).toEqual([3, 3]);
    const info = await ra("probe-info", String(system.probes[0]!.id));
    expect(info.ok, info.out).toBe(true);
    expect(info.out).toMatch(/Country\s+NL/);
  }, 180_000);
});
