// Real servers from Debian for the measurement truth tests, each started inside a test namespace and stopped by
// its process: NSD (authoritative DNS), unbound (a resolver speaking DNS over TLS) and chronyd (NTP).
import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { existsSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { Netns } from "./netns.ts";
import { tempDir, until } from "./system.ts";

export function missingPrograms(...programs: string[]): string | null {
  const missing = programs.filter((p) => !["/usr/sbin", "/usr/bin", "/sbin", "/bin"].some((d) => existsSync(join(d, p))));
  return missing.length ? `missing ${missing.join(", ")} (npm test installs them when run as root)` : null;
}

export type Server = { process: ChildProcess; dir: string; stop: () => Promise<void> };

function run(ns: Netns, cmd: string, args: string[], dir: string): Server {
  const child = spawn("ip", ["netns", "exec", ns.name, cmd, ...args], { stdio: ["ignore", "pipe", "pipe"] });
  let log = "";
  child.stdout!.on("data", (d) => (log += d));
  child.stderr!.on("data", (d) => (log += d));
  return {
    process: child, dir,
    stop: async () => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = new Promise((r) => child.once("exit", r));
      child.kill("SIGTERM");
      await exited;
      void log;
    },
  };
}

/** Waits until the DNS server in the namespace answers for www.example.test on 127.0.0.1:53. */
async function answering(ns: Netns, server: string): Promise<void> {
  await until(`${server} to answer`, async () => {
    try {
      return ns.exec("dig", ["@127.0.0.1", "+short", "+time=1", "+tries=1", "www.example.test", "A"]).trim() === "192.0.2.10";
    } catch {
      return false;
    }
  }, 15_000);
}

/** A zone with the records the DNS tests ask for; `big` has enough TXT data to truncate a plain UDP answer. */
export const EXAMPLE_ZONE = `$ORIGIN example.test.
$TTL 300
@    IN SOA ns1.example.test. hostmaster.example.test. 2026112601 3600 900 604800 300
@    IN NS  ns1.example.test.
ns1  IN A   127.0.0.1
www  IN A   192.0.2.10
www  IN AAAA 2001:db8::10
txt  IN TXT "hello from the lab"
${Array.from({ length: 8 }, (_, i) => `big  IN TXT "${String(i).repeat(120)}"`).join("\n")}
`;

/**
 * NSD serving example.test on 127.0.0.1:53 and [::1]:53 in the namespace, with NSID "vantage-test". `unlimited`
 * turns off its response rate limiting (on by default in Debian's build: 200 answers/s to one client), for traffic
 * generators.
 */
export async function startNsd(ns: Netns, o: { unlimited?: boolean } = {}): Promise<Server> {
  const dir = tempDir("nsd");
  writeFileSync(join(dir, "example.test.zone"), EXAMPLE_ZONE);
  writeFileSync(join(dir, "nsd.conf"), `server:
    ip-address: 127.0.0.1
    ip-address: ::1
    port: 53
    username: ""
    chroot: ""
    zonesdir: "${dir}"
    database: ""
    pidfile: "${dir}/nsd.pid"
    xfrdfile: "${dir}/xfrd.state"
    zonelistfile: "${dir}/zone.list"
    logfile: "${dir}/nsd.log"
    server-count: 1
    nsid: "ascii_vantage-test"
${o.unlimited ? "    rrl-ratelimit: 0\n" : ""}remote-control:
    control-enable: no
zone:
    name: "example.test"
    zonefile: "example.test.zone"
`);
  execFileSync("nsd-checkconf", [join(dir, "nsd.conf")]);
  const server = run(ns, "nsd", ["-c", join(dir, "nsd.conf"), "-d"], dir);
  await answering(ns, "nsd");
  return server;
}

/**
 * unbound as a resolver on 127.0.0.1 in the namespace: plain DNS on port 53 and DNS over TLS on port 853 (RFC 7858)
 * with the given certificate chain and key, answering the example.test records from its own local data (fixed TTLs
 * and record order, so every answer to a question is the same bytes whichever transport asked).
 */
export async function startUnbound(ns: Netns, tls: { chain: string; key: string }): Promise<Server> {
  const dir = tempDir("unbound");
  writeFileSync(join(dir, "server.pem"), tls.chain);
  writeFileSync(join(dir, "server.key"), tls.key, { mode: 0o600 });
  const data = EXAMPLE_ZONE.split("\n").filter((l) => /^(www|txt|big)\s/.test(l))
    .map((l) => `    local-data: '${l.replace(/^(\S+)\s+IN/, "$1.example.test. 300 IN")}'`);
  writeFileSync(join(dir, "unbound.conf"), `server:
    interface: 127.0.0.1@53
    interface: 127.0.0.1@853
    tls-port: 853
    tls-service-key: "${dir}/server.key"
    tls-service-pem: "${dir}/server.pem"
    access-control: 127.0.0.0/8 allow
    username: ""
    chroot: ""
    directory: "${dir}"
    pidfile: "${dir}/unbound.pid"
    use-syslog: no
    logfile: ""
    do-ip6: no
    module-config: "iterator"
    num-threads: 1
    rrset-roundrobin: no
    local-zone: "example.test." static
${data.join("\n")}
remote-control:
    control-enable: no
`);
  execFileSync("unbound-checkconf", [join(dir, "unbound.conf")]);
  const server = run(ns, "unbound", ["-d", "-c", join(dir, "unbound.conf")], dir);
  await answering(ns, "unbound");
  return server;
}

/**
 * Knot DNS serving example.test on 127.0.0.1:53 in the namespace, logging every query and response it handles as
 * dnstap (knot-module-dnstap) to `dnstapSink`: a file, or `unix:/path` for a collector listening there.
 */
export async function startKnot(ns: Netns, dnstapSink: string): Promise<Server> {
  const dir = tempDir("knot");
  writeFileSync(join(dir, "example.test.zone"), EXAMPLE_ZONE);
  writeFileSync(join(dir, "knot.conf"), `server:
    listen: 127.0.0.1@53
    rundir: "${dir}"
    user: root:root
    pidfile: "${dir}/knot.pid"
database:
    storage: "${dir}"
log:
  - target: stderr
    any: warning
mod-dnstap:
  - id: tap
    sink: "${dnstapSink}"
    log-queries: on
    log-responses: on
template:
  - id: default
    storage: "${dir}"
    global-module: mod-dnstap/tap
zone:
  - domain: example.test
    file: example.test.zone
`);
  execFileSync("knotc", ["-c", join(dir, "knot.conf"), "conf-check"], { stdio: "pipe" });
  const server = run(ns, "knotd", ["-c", join(dir, "knot.conf")], dir);
  await answering(ns, "knotd");
  return server;
}

/** chronyd as an NTP server at local stratum 5 on 127.0.0.1:123 in the namespace, not touching the clock. */
export async function startChrony(ns: Netns): Promise<Server> {
  const dir = tempDir("chrony");
  writeFileSync(join(dir, "chrony.conf"), `port 123\ncmdport 0\nallow 127.0.0.0/8\nallow ::1\nlocal stratum 5\npidfile ${dir}/chronyd.pid\n`);
  const server = run(ns, "chronyd", ["-f", join(dir, "chrony.conf"), "-d", "-x"], dir);
  await until("chronyd to answer", async () => {
    try {
      return / s5 /.test(ns.exec("sntp", ["-t", "1", "127.0.0.1"]));
    } catch {
      return false;
    }
  }, 15_000);
  return server;
}
