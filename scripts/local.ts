// Running the system locally: the edge under `wrangler dev` (Durable Objects on SQLite + the R2 simulation, state
// persisted on disk), an HTTPS front on the same service for Atlas clients that hard-code https, and real probe
// agent processes. Used by `npm start`, the end-to-end tests and the benchmarks.
import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { generateKeyPairSync, randomBytes } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import http from "node:http";
import https from "node:https";
import type { AddressInfo } from "node:net";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { BUNDLE, AGENT_ENV, NODE_FLAGS } from "../probe-agent/build.ts";

export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..");

export type EdgeSecrets = { EDGE_PRIVATE_JWK: string; EDGE_PUBLIC_JWK: string; ADMIN_TOKEN: string };

/** Edge signing keys and admin token for a local deployment, made once per state directory. */
export function edgeSecrets(stateDir: string): EdgeSecrets {
  const path = join(stateDir, "edge-secrets.json");
  if (existsSync(path)) return JSON.parse(readFileSync(path, "utf8")) as EdgeSecrets;
  const { privateKey, publicKey } = generateKeyPairSync("ed25519");
  const secrets: EdgeSecrets = {
    EDGE_PRIVATE_JWK: JSON.stringify(privateKey.export({ format: "jwk" })),
    EDGE_PUBLIC_JWK: JSON.stringify(publicKey.export({ format: "jwk" })),
    ADMIN_TOKEN: randomBytes(24).toString("base64url"),
  };
  mkdirSync(stateDir, { recursive: true, mode: 0o700 });
  writeFileSync(path, JSON.stringify(secrets, null, 2), { mode: 0o600 });
  return secrets;
}

/**
 * The local deployment's release key pair, made once per state directory (release-keys.json, mode 0600): local
 * probes pin its public half, and `vantage sign-release` signs with the private half (RELEASE_PRIVATE_JWK).
 */
export function releaseKeys(stateDir: string): { RELEASE_PRIVATE_JWK: string; RELEASE_PUBLIC_JWK: string; path: string } {
  const path = join(stateDir, "release-keys.json");
  if (!existsSync(path)) {
    const { privateKey, publicKey } = generateKeyPairSync("ed25519");
    mkdirSync(stateDir, { recursive: true, mode: 0o700 });
    writeFileSync(path, JSON.stringify({
      RELEASE_PRIVATE_JWK: JSON.stringify(privateKey.export({ format: "jwk" })), RELEASE_PUBLIC_JWK: JSON.stringify(publicKey.export({ format: "jwk" })),
    }, null, 2), { mode: 0o600 });
  }
  return { ...(JSON.parse(readFileSync(path, "utf8")) as { RELEASE_PRIVATE_JWK: string; RELEASE_PUBLIC_JWK: string }), path };
}

export type Edge = {
  url: string;
  secrets: EdgeSecrets;
  process: ChildProcess;
  output: () => string;
  stop: () => Promise<void>;
};

export type EdgeOptions = { stateDir: string; port: number; vars?: Record<string, string>; quiet?: boolean };

/** Starts `wrangler dev` in local mode and waits until the Worker answers. */
export async function startEdge(o: EdgeOptions): Promise<Edge> {
  const secrets = edgeSecrets(o.stateDir);
  // Local mode lets measurements aim at loopback and private addresses, unless VANTAGE_ALLOW_PRIVATE_TARGETS=false
  // makes this edge refuse them as a deployed one does (its probes then refuse them too: they honour the edge's word).
  const allowPrivate = process.env.VANTAGE_ALLOW_PRIVATE_TARGETS === "false" ? "false" : "true";
  const env = { ...secrets, ALLOW_PRIVATE_TARGETS: allowPrivate, FLUSH_INTERVAL_MS: "1000", ...o.vars };
  const envFile = join(o.stateDir, "edge.env");
  writeFileSync(envFile, Object.entries(env).map(([k, v]) => `${k}='${v}'`).join("\n") + "\n", { mode: 0o600 });
  // Run wrangler on this Node (≥ 22), whatever `node` is first on PATH.
  const child = spawn(process.execPath, [join(ROOT, "node_modules/wrangler/bin/wrangler.js"),
    "dev", "--ip", "127.0.0.1", "--port", String(o.port), "--persist-to", join(o.stateDir, "wrangler"),
    "--env-file", envFile, "--show-interactive-dev-session=false", "--inspector-port", String(o.port + 10_000),
  ], { cwd: ROOT, env: { ...process.env, CLOUDFLARE_CF_FETCH_ENABLED: "false", WRANGLER_SEND_METRICS: "false", CI: "true" }, stdio: ["ignore", "pipe", "pipe"], detached: true });
  let log = "";
  const collect = (d: Buffer) => {
    log += d.toString();
    if (log.length > 1_000_000) log = log.slice(-500_000);
    if (!o.quiet) process.stderr.write(d);
  };
  child.stdout!.on("data", collect);
  child.stderr!.on("data", collect);
  const url = `http://127.0.0.1:${o.port}`;
  const stop = async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise<void>((r) => child.once("exit", () => r()));
    try { process.kill(-child.pid!, "SIGTERM"); } catch { /* gone */ }
    const timer = setTimeout(() => { try { process.kill(-child.pid!, "SIGKILL"); } catch { /* gone */ } }, 5000);
    await exited;
    clearTimeout(timer);
  };
  const deadline = Date.now() + 90_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`wrangler dev exited (${child.exitCode}):\n${log.slice(-4000)}`);
    try {
      const res = await fetch(`${url}/probe/v1/edge-key`, { signal: AbortSignal.timeout(2000) });
      if (res.ok) break;
    } catch { /* not up yet */ }
    if (Date.now() > deadline) { await stop(); throw new Error(`wrangler dev did not answer within 90 s:\n${log.slice(-4000)}`); }
    await new Promise((r) => setTimeout(r, 250));
  }
  return { url, secrets, process: child, output: () => log, stop };
}

/** Kills the edge the way a crash or deploy would: no shutdown, every WebSocket dropped. */
export function killEdge(edge: Edge): Promise<void> {
  const exited = new Promise<void>((r) => edge.process.once("exit", () => r()));
  try { process.kill(-edge.process.pid!, "SIGKILL"); } catch { /* gone */ }
  return exited;
}

/** An HTTPS front for the same edge (self-signed certificate made with openssl), WebSockets included. */
export async function startHttpsFront(stateDir: string, port: number, target: string): Promise<{ url: string; close: () => Promise<void> }> {
  const key = join(stateDir, "tls-key.pem"), cert = join(stateDir, "tls-cert.pem");
  if (!existsSync(cert)) {
    execFileSync("openssl", ["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "825",
      "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost", "-keyout", key, "-out", cert], { stdio: "ignore" });
  }
  const upstream = new URL(target);
  const server = https.createServer({ key: readFileSync(key), cert: readFileSync(cert) }, (req, res) => {
    const fwd = http.request({ host: upstream.hostname, port: upstream.port, method: req.method, path: req.url,
      headers: { ...req.headers, "x-forwarded-proto": "https" } }, (up) => {
      res.writeHead(up.statusCode ?? 502, up.headers);
      up.pipe(res);
    });
    fwd.on("error", (e) => { res.writeHead(502, { "Content-Type": "text/plain" }); res.end(`edge unreachable: ${e.message}\n`); });
    req.pipe(fwd);
  });
  server.on("upgrade", (req, socket, head) => {
    const fwd = http.request({ host: upstream.hostname, port: upstream.port, method: req.method, path: req.url, headers: req.headers });
    fwd.on("upgrade", (up, upSocket, upHead) => {
      const lines = [`HTTP/1.1 ${up.statusCode} ${up.statusMessage}`, ...Object.entries(up.headers).flatMap(([k, v]) => (Array.isArray(v) ? v : [v]).map((x) => `${k}: ${x}`))];
      socket.write(lines.join("\r\n") + "\r\n\r\n");
      if (upHead.length) socket.write(upHead);
      if (head.length) upSocket.write(head);
      upSocket.pipe(socket).pipe(upSocket);
      socket.on("error", () => upSocket.destroy());
      upSocket.on("error", () => socket.destroy());
    });
    fwd.on("response", (res) => { socket.end(`HTTP/1.1 ${res.statusCode} ${res.statusMessage}\r\n\r\n`); });
    fwd.on("error", () => socket.destroy());
    fwd.end();
  });
  await new Promise<void>((r) => server.listen(port, "127.0.0.1", r));
  return {
    url: `https://127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: () => new Promise<void>((r) => { server.closeAllConnections(); server.close(() => r()); }),
  };
}

export async function admin<T>(edge: { url: string; secrets: EdgeSecrets }, path: string, body: unknown): Promise<T> {
  const res = await fetch(`${edge.url}${path}`, {
    method: "POST", headers: { "Content-Type": "application/json", Authorization: `Bearer ${edge.secrets.ADMIN_TOKEN}` }, body: JSON.stringify(body),
  });
  const json = (await res.json()) as T & { error?: { detail: string } };
  if (!res.ok) throw new Error(`${path}: ${res.status} ${json.error?.detail}`);
  return json;
}

export type LocalProbe = { id: number; stateDir: string; configPath: string };
export type ProbeSite = { country_code: string; asn_v4: number; prefix_v4: string; latitude: number; longitude: number; description: string };

/** Three sites in three regions (documentation ASNs), so `npm start` exercises several controller shards. */
export const LOCAL_SITES: ProbeSite[] = [
  { country_code: "NL", asn_v4: 64496, prefix_v4: "192.0.2.0/24", latitude: 52.37, longitude: 4.9, description: "local probe (Amsterdam)" },
  { country_code: "US", asn_v4: 64497, prefix_v4: "198.51.100.0/24", latitude: 40.71, longitude: -74.0, description: "local probe (New York)" },
  { country_code: "JP", asn_v4: 64498, prefix_v4: "203.0.113.0/24", latitude: 35.68, longitude: 139.69, description: "local probe (Tokyo)" },
];

/** Makes (once) a probe's key and enrollment, and writes its agent config. */
export async function provisionProbe(edge: Edge, dir: string, site: ProbeSite, extra: Record<string, unknown> = {}, owner?: string): Promise<LocalProbe> {
  const { loadIdentity } = await import("../probe-agent/identity.ts");
  const idPath = join(dir, "probe-id");
  const identity = loadIdentity(dir);
  let id: number;
  if (existsSync(idPath)) id = Number(readFileSync(idPath, "utf8"));
  else {
    id = (await admin<{ id: number }>(edge, "/admin/probes", { public_key: identity.publicKey, ...site, owner })).id;
    writeFileSync(idPath, String(id));
  }
  const configPath = join(dir, "agent.json");
  writeFileSync(configPath, JSON.stringify({
    probe_id: id, registration_urls: [edge.url], edge_public_jwk: JSON.parse(edge.secrets.EDGE_PUBLIC_JWK),
    state_dir: dir, slots: 8, allow_private_targets: true, heartbeat_s: 15,
    // Local probes send nothing off this machine: their built-in anchor is the loopback address.
    builtins: { enabled: true, anchors: ["127.0.0.1"], ping_interval_s: 240, traceroute_interval_s: 900 }, ...extra,
  }, null, 2));
  return { id, stateDir: dir, configPath };
}

export type ProbeProcess = { probe: LocalProbe; readonly process: ChildProcess; output: () => string; stop: () => Promise<void> };

/**
 * Runs a probe's agent (its bundle, with its flags) and, as a service manager would (systemd's Restart=), starts it
 * again a second after it exits on its own: that is what rolls back a release that dies (probe-agent/release.ts).
 */
/**
 * Runs an agent process (restarted when it exits, as a service manager would). `hosts`: a file the agent sees as
 * its /etc/hosts, bind-mounted in a mount namespace of its own (root only), so a test can make a name resolve to a
 * private address on the probe without touching the machine's resolver.
 */
export function startProbe(probe: LocalProbe, opts: { quiet?: boolean; hosts?: string } = {}): ProbeProcess {
  if (!existsSync(BUNDLE)) throw new Error(`${BUNDLE} is missing: run npm run build:probe`);
  let log = "";
  let stopping = false;
  const collect = (d: Buffer) => { log += d.toString(); if (!opts.quiet) process.stderr.write(d); };
  const run = (): ChildProcess => {
    const command = [process.execPath, ...NODE_FLAGS, BUNDLE, "run", "--config", probe.configPath];
    const [file, ...args] = opts.hosts
      ? ["unshare", "--mount", "--propagation", "private", "--", "sh", "-c", 'mount --bind "$0" /etc/hosts && exec "$@"', opts.hosts, ...command]
      : command;
    const c = spawn(file!, args, {
      cwd: ROOT, stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, ...AGENT_ENV },
    });
    c.stdout!.on("data", collect);
    c.stderr!.on("data", collect);
    c.once("exit", (code, signal) => {
      if (stopping) return;
      const notice = `[probe ${probe.id}: the agent exited (${signal ?? `code ${code}`}); starting it again in 1 s]\n`;
      collect(Buffer.from(notice));
      if (opts.quiet) process.stderr.write(notice);
      setTimeout(() => { if (!stopping) child = run(); }, 1000);
    });
    return c;
  };
  let child = run();
  return {
    probe, get process() { return child; }, output: () => log,
    stop: async () => {
      stopping = true;
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = new Promise<void>((r) => child.once("exit", () => r()));
      child.kill("SIGTERM");
      const t = setTimeout(() => child.kill("SIGKILL"), 3000);
      await exited;
      clearTimeout(t);
    },
  };
}

export type LocalSystem = {
  edge: Edge;
  front: { url: string; close: () => Promise<void> };
  key: string;
  probes: LocalProbe[];
  agents: ProbeProcess[];
  stop: () => Promise<void>;
};

/**
 * The whole system: the edge, its HTTPS front, an API key (the given one, or a fresh one) and one enrolled agent
 * process per site; resolves once every probe is connected.
 */
export async function startLocalSystem(o: {
  stateDir: string; port: number; httpsPort: number; apiKey?: string; sites?: ProbeSite[]; quiet?: boolean;
  /** Agent config entries every probe gets on top of the defaults (e.g. `slots`, `builtins`). */
  probeConfig?: Record<string, unknown>;
  /** Edge variables on top of the local defaults (e.g. quotas). */
  vars?: Record<string, string>;
}): Promise<LocalSystem> {
  const edge = await startEdge({ stateDir: o.stateDir, port: o.port, quiet: o.quiet ?? true, vars: o.vars });
  const front = await startHttpsFront(o.stateDir, o.httpsPort, edge.url);
  const sites = o.sites ?? LOCAL_SITES;
  // The local account starts with a million credits (granted once, however often the system restarts).
  const { key, account } = await admin<{ key: string; account: string }>(edge, "/admin/keys", { label: "local", credits: 1_000_000, ...(o.apiKey ? { key: o.apiKey } : {}) });
  // The local account hosts the local probes, so their uptime earns it credits.
  // Local probes pin the local release key (unless told otherwise), so releases can be rolled out to them.
  const probeConfig = { release_public_jwk: JSON.parse(releaseKeys(o.stateDir).RELEASE_PUBLIC_JWK) as JsonWebKey, ...o.probeConfig };
  const probes = await Promise.all(sites.map((site, i) => provisionProbe(edge, join(o.stateDir, "probes", String(i + 1)), site, probeConfig, account)));
  const agents = probes.map((p) => startProbe(p, { quiet: o.quiet ?? true }));
  const stop = async () => {
    await Promise.all(agents.map((a) => a.stop()));
    await front.close();
    await edge.stop();
  };
  const deadline = Date.now() + 60_000;
  for (;;) {
    const res = await fetch(`${edge.url}/api/v2/probes/?status=1&id__in=${probes.map((p) => p.id).join(",")}`).catch(() => null);
    if (res?.ok && ((await res.json()) as { count: number }).count === probes.length) break;
    if (Date.now() > deadline) {
      const logs = agents.map((a) => a.output().slice(-1000)).join("\n");
      await stop();
      throw new Error(`probes did not all connect within 60 s:\n${logs}`);
    }
    await new Promise((r) => setTimeout(r, 250));
  }
  return { edge, front, key, probes, agents, stop };
}
