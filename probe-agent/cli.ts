// vantage-probe: `enroll` prints this probe's public key (making the key pair on first use);
// `run` registers with the edge and measures until stopped.
import { parseArgs } from "node:util";

const USAGE = `usage:
  vantage-probe enroll --state DIR      print this probe's public key (creates the key pair on first run)
  vantage-probe run --config FILE       register, connect and measure until SIGINT/SIGTERM
  vantage-probe dnsstats --read FILE --out DIR [--sample-rate R] [--client-addresses]
                                        DNS statistics of a capture (pcap, pcapng) or dnstap file: per-minute DSC
                                        datasets and a C-DNS sample of whole query/response pairs in DIR`;

async function main(): Promise<number> {
  const { positionals, values } = parseArgs({
    allowPositionals: true,
    options: {
      state: { type: "string" }, config: { type: "string" }, help: { type: "boolean", short: "h" },
      read: { type: "string" }, out: { type: "string" }, "sample-rate": { type: "string" }, "client-addresses": { type: "boolean" },
    },
  });
  const [command] = positionals;
  if (values.help || !command) { console.log(USAGE); return command ? 0 : 2; }
  if (command === "enroll") {
    if (!values.state) { console.error("enroll needs --state DIR"); return 2; }
    const { loadIdentity } = await import("./identity.ts");
    console.log(loadIdentity(values.state).publicKey);
    return 0;
  }
  if (command === "run") {
    if (!values.config) { console.error("run needs --config FILE"); return 2; }
    const { loadConfig } = await import("./config.ts");
    const { Agent } = await import("./agent.ts");
    const { Releases } = await import("./release.ts");
    const { AGENT_VERSION } = await import("./version.ts");
    const config = loadConfig(values.config);
    const log = (level: "info" | "warn" | "error", msg: string) => {
      const line = `${new Date().toISOString()} ${level} probe ${config.probe_id} (${AGENT_VERSION}): ${msg}`;
      (level === "info" ? console.log : console.error)(line);
    };
    // A signed release this probe switched to runs instead of the installed bundle (probe-agent/release.ts).
    const releases = new Releases(config, values.config, log);
    const release = await releases.atStart();
    if (release) releases.become(release);
    const agent = new Agent(config, log, releases);
    agent.start();
    await new Promise<void>((resolve) => {
      for (const sig of ["SIGINT", "SIGTERM"] as const) process.once(sig, () => void agent.stop().then(resolve));
    });
    return 0;
  }
  if (command === "dnsstats") {
    if (!values.read || !values.out) { console.error("dnsstats needs --read FILE and --out DIR"); return 2; }
    if (process.execArgv.includes("--lite-mode")) {
      // The shipped agent runs in V8's lite mode (memory before speed, build.ts); reading a capture is a batch job
      // that wants the optimising compiler: 3× faster measured (58,000 → 184,000 queries/s of CPU, `npm run
      // bench:dnsstats`), so it runs again without.
      const { spawnSync } = await import("node:child_process");
      const again = spawnSync(process.execPath, ["--max-semi-space-size=16", process.argv[1]!, ...process.argv.slice(2)], { stdio: "inherit" });
      return again.status ?? 1;
    }
    const rate = values["sample-rate"] === undefined ? undefined : Number(values["sample-rate"]);
    if (rate !== undefined && !(rate >= 0 && rate <= 1)) { console.error(`--sample-rate ${values["sample-rate"]}: a share between 0 and 1 (0.01 keeps 1 % of pairs)`); return 2; }
    const { collectFile } = await import("./dnsstats/index.ts");
    const { AGENT_VERSION } = await import("./version.ts");
    const summary = await collectFile(values.read, values.out, { ...(rate === undefined ? {} : { sampleRate: rate }), clientAddresses: values["client-addresses"] ?? false }, `vantage-probe ${AGENT_VERSION}`);
    console.log(JSON.stringify(summary));
    return 0;
  }
  console.error(`unknown command "${command}"\n${USAGE}`);
  return 2;
}

main().then((code) => process.exit(code), (e: unknown) => { console.error((e as Error).message); process.exit(1); });
