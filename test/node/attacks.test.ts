// Attacks that need real processes: a deployed edge (private targets refused) with a real agent whose host allows
// private targets, aimed through a name that resolves to loopback only on the probe; and a hostile edge answering
// `vantage bundles pull` with names meant to write outside --dir.
import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, readdirSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:http";
import { join, resolve } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { bundleFile, pullBundles } from "../../cli/bundles.ts";
import { type Edge, LOCAL_SITES, type ProbeProcess, provisionProbe, startEdge, startProbe, admin } from "../../scripts/local.ts";
import type { BundleManifest } from "../../storage/bundles.ts";
import type { HttpResult, PingResult } from "../../protocol/index.ts";
import { freePort, tempDir, until } from "./system.ts";

/** Why a probe cannot be given a private /etc/hosts here, or null. */
function mountNamespaceUnavailable(): string | null {
  if (process.getuid?.() !== 0) return "needs root (a mount namespace for the agent's /etc/hosts)";
  try {
    execFileSync("unshare", ["--mount", "--propagation", "private", "--", "true"], { stdio: "ignore" });
    return null;
  } catch (e) {
    return `unshare --mount fails: ${(e as Error).message}`;
  }
}

describe("a deployed edge and an agent whose host allows private targets", () => {
  const why = mountNamespaceUnavailable();
  if (why) throw new Error(`this test needs ${why}; CI runs as root`);
  const state = tempDir("attacks-");
  let edge: Edge;
  let agent: ProbeProcess;
  let key: string;
  let probeId: number;

  beforeAll(async () => {
    // ALLOW_PRIVATE_TARGETS=false is what `wrangler deploy` runs with; the probe's own config says private is fine.
    edge = await startEdge({ stateDir: state, port: await freePort(), quiet: true, vars: { ALLOW_PRIVATE_TARGETS: "false" } });
    key = (await admin<{ key: string }>(edge, "/admin/keys", { label: "attacker", credits: 1_000_000 })).key;
    const probe = await provisionProbe(edge, join(state, "probe"), LOCAL_SITES[0]!, { allow_private_targets: true, builtins: { enabled: false } });
    probeId = probe.id;
    // On the probe (only there), these names reach loopback: the edge sees a public-looking name.
    const hosts = join(state, "hosts");
    writeFileSync(hosts, "127.0.0.1 localhost\n127.0.0.1 intranet.vantage-attack.test\n::1 intranet6.vantage-attack.test\n");
    agent = startProbe(probe, { quiet: true, hosts });
    await until("the probe to connect", async () => ((await (await fetch(`${edge.url}/api/v2/probes/${probe.id}/`)).json()) as { status: { id: number } }).status.id === 1);
  }, 120_000);
  afterAll(async () => {
    await agent?.stop();
    await edge?.stop();
  });

  const measure = async (definition: Record<string, unknown>) => {
    const res = await fetch(`${edge.url}/api/v2/measurements/`, {
      method: "POST", headers: { "Content-Type": "application/json", Authorization: `Key ${key}` },
      body: JSON.stringify({ definitions: [{ description: "aimed at the probe's LAN", ...definition }], probes: [{ type: "probes", value: String(probeId), requested: 1 }], is_oneoff: true }),
    });
    expect(res.status).toBe(201);
    const id = ((await res.json()) as { measurements: number[] }).measurements[0]!;
    return until(`a result of ${id}`, async () => {
      const list = (await (await fetch(`${edge.url}/api/v2/measurements/${id}/results/`)).json()) as unknown[];
      return list.length ? list[0] : null;
    }, 60_000, 250);
  };

  it("attack: a name that resolves to loopback on the probe — the agent refuses after resolving, as the edge told it to", async () => {
    const r = (await measure({ type: "ping", af: 4, target: "intranet.vantage-attack.test", packets: 1 })) as PingResult;
    expect(r.rcvd).toBe(0);
    expect(r.result).toEqual([{ error: expect.stringMatching(/^destination 127\.0\.0\.1 is Loopback .*: not a public address$/) }]);
    const r6 = (await measure({ type: "ping", af: 6, target: "intranet6.vantage-attack.test", packets: 1 })) as PingResult;
    expect(r6.result).toEqual([{ error: expect.stringMatching(/^destination ::1 is Loopback Address .*: not a public address$/) }]);
  }, 90_000);

  it("attack: the same name for an HTTP GET (a request to the host's own web interface) — refused before any connection", async () => {
    const r = (await measure({ type: "http", af: 4, target: "intranet.vantage-attack.test" })) as HttpResult;
    expect(r.result).toEqual([expect.objectContaining({ err: expect.stringMatching(/127\.0\.0\.1 is Loopback/) })]);
    expect(r.result[0]).not.toHaveProperty("res");
  }, 90_000);
});

describe("a hostile edge answering `vantage bundles pull`", () => {
  let server: Server;
  let url = "";
  let listing: BundleManifest[] = [];
  const good: BundleManifest = {
    name: "ping-2026-12-01T0100", type: "ping", date: "2026-12-01", hour: "01", key: "bundles/x", count: 1, bytes: 3,
    sha256: "a".repeat(64), first_timestamp: 0, last_timestamp: 0,
  };
  beforeAll(async () => {
    server = createServer((req, res) => {
      if (req.url?.startsWith("/api/v2/bundles/?")) {
        res.setHeader("Content-Type", "application/json");
        res.end(JSON.stringify({ next: null, results: listing }));
      } else {
        res.statusCode = 302;
        res.setHeader("Location", `${url}/bytes`);
        res.end();
      }
    });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
    url = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
  });
  afterAll(() => new Promise<void>((r) => server.close(() => r())));

  it.each([
    ["a name climbing out", { name: "../../../../tmp/vantage-escape" }],
    ["an absolute name", { name: "/tmp/vantage-escape" }],
    ["a name with a separator", { name: "ping-2026-12-01T0100/../../x" }],
    ["a type climbing out", { type: "../../etc" }],
    ["a date climbing out", { date: "../../../tmp" }],
    ["a name for another hour", { name: "ping-2026-12-01T0200" }],
    ["a malformed digest", { sha256: "../x" }],
  ])("attack: %s — refused before anything is written, --dir keeps nothing outside", async (_what, change) => {
    const root = tempDir("pull-");
    const dir = join(root, "inside");
    mkdirSync(dir);
    listing = [good, { ...good, ...change }];
    await expect(pullBundles({ edge: url, dir, from: "2026-12-01", to: "2026-12-01" })).rejects.toThrow(/refused/);
    expect(readdirSync(root)).toEqual(["inside"]);
    expect(readdirSync(dir)).toEqual([]);
    expect(existsSync("/tmp/vantage-escape")).toBe(false);
  });

  it("puts a well-formed bundle where the Hive layout says, under --dir", () => {
    expect(bundleFile("/data/b", good)).toBe(resolve("/data/b/type=ping/date=2026-12-01/hour=01/ping-2026-12-01T0100.jsonl.gz"));
  });
});
