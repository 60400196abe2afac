#!/usr/bin/env node
// `npm run classify -- [options] <captures…>`: classify capture files offline, one record per flow.
import { readFileSync } from "node:fs";
import net from "node:net";
import { parseArgs } from "node:util";
import { type ClassifyEvent, classifyFiles, classifyLive, type FlowRecord, textLine } from "./index.ts";

const USAGE = `usage: npm run classify -- [options] <captures…>
  --mode offline|realtime|cyclic   offline: every flow at the end (default); realtime: each decision as it is made;
                                   cyclic: traffic per application every --interval seconds of capture time
  --interval S                     cyclic mode's interval (default 300)
  --format text|jsonl|summary      TIE-like text lines (default), JSON lines, or (offline) only the traffic per
                                   application: label, flows, packets and bytes up and down
  --socket HOST:PORT               realtime: also send each decision as a JSON line to this TCP address
  --plugins port,ndpi              plug-ins in priority order (default port)
  --combiner priority|majority|weighted
                                   how answers become a decision (default priority; weighted uses --weights, default
                                   classifier-native/data/weights.tsv from npm run train:classifier)
  --weights FILE                   the weighted combiner's model
  --sessions bidirectional|unidirectional|host-pair
                                   what a flow is (default bidirectional 5-tuple + VLAN)
  -i IFACE --duration S            live capture on an interface for S seconds (needs CAP_NET_RAW) instead of files
  --bpf EXPR  --playlist FILE  --loop N`;

async function main(): Promise<number> {
  const { values, positionals } = parseArgs({
    allowPositionals: true,
    options: {
      format: { type: "string", default: "text" }, bpf: { type: "string" }, plugins: { type: "string" },
      playlist: { type: "string" }, loop: { type: "string", default: "1" }, mode: { type: "string", default: "offline" },
      interval: { type: "string", default: "300" }, socket: { type: "string" }, duration: { type: "string" },
      interface: { type: "string", short: "i" }, help: { type: "boolean", short: "h" },
      combiner: { type: "string", default: "priority" }, weights: { type: "string" },
      sessions: { type: "string", default: "bidirectional" },
    },
  });
  if (values.help) { console.log(USAGE); return 0; }
  const mode = values.mode;
  if (mode !== "offline" && mode !== "realtime" && mode !== "cyclic") { console.error(`--mode must be offline, realtime or cyclic\n${USAGE}`); return 2; }
  const interval = Number(values.interval);
  if (mode === "cyclic" && !(interval > 0)) { console.error("--interval must be a positive number of seconds"); return 2; }
  if (values.format !== "text" && values.format !== "jsonl" && values.format !== "summary") { console.error(`--format must be text, jsonl or summary\n${USAGE}`); return 2; }
  if (values.format === "summary" && mode !== "offline") { console.error("--format summary goes with --mode offline"); return 2; }
  const combiner = values.combiner;
  if (combiner !== "priority" && combiner !== "majority" && combiner !== "weighted") { console.error(`--combiner must be priority, majority or weighted\n${USAGE}`); return 2; }
  const loop = Number(values.loop);
  if (!Number.isInteger(loop) || loop < 1) { console.error("--loop must be a whole number ≥ 1"); return 2; }
  const inputs = [...positionals];
  if (values.playlist) inputs.push(...readFileSync(values.playlist, "utf8").split("\n").map((l) => l.trim()).filter((l) => l && !l.startsWith("#")));
  if (inputs.length === 0 && !values.interface) { console.error(USAGE); return 2; }
  if (values.interface && !(Number(values.duration) > 0)) { console.error("-i needs --duration S (seconds to capture)"); return 2; }
  const files = Array.from({ length: loop }, () => inputs).flat();
  const line = (f: FlowRecord) => (values.format === "jsonl" ? JSON.stringify(f) : textLine(f));
  let sink: net.Socket | null = null;
  if (values.socket) {
    if (mode !== "realtime") { console.error("--socket goes with --mode realtime"); return 2; }
    const [host, port] = [values.socket.slice(0, values.socket.lastIndexOf(":")), Number(values.socket.slice(values.socket.lastIndexOf(":") + 1))];
    sink = net.connect({ host, port });
    await new Promise<void>((resolve, reject) => { sink!.once("connect", resolve); sink!.once("error", reject); });
  }
  const onEvent = mode === "offline" ? undefined : (e: ClassifyEvent) => {
    if (e.type === "decision") {
      if (mode !== "realtime") return;
      console.log(line(e.flow));
      sink?.write(JSON.stringify(e.flow) + "\n");
    } else if (values.format === "jsonl") {
      console.log(JSON.stringify(e));
    } else {
      for (const a of e.apps) console.log([e.start, e.end, a.label, a.flows, a.packets_up, a.bytes_up, a.packets_down, a.bytes_down].join("\t"));
    }
  };
  const sessions = values.sessions;
  if (sessions !== "bidirectional" && sessions !== "unidirectional" && sessions !== "host-pair") { console.error(`--sessions must be bidirectional, unidirectional or host-pair\n${USAGE}`); return 2; }
  const options = {
    bpf: values.bpf, sessions, plugins: values.plugins?.split(","), interval: mode === "cyclic" ? interval : undefined, combiner, weights: values.weights,
    flows: values.format !== "summary",
  };
  const { flows, stats, apps } = values.interface
    ? await classifyLive(values.interface, Number(values.duration), options, onEvent)
    : await classifyFiles(files, options, onEvent);
  if (values.format === "summary") for (const a of apps) console.log([a.label, a.flows, a.packets_up, a.bytes_up, a.packets_down, a.bytes_down].join("\t"));
  else if (mode === "offline") for (const f of flows) console.log(line(f));
  if (sink) await new Promise<void>((r) => sink!.end(r));
  for (const w of stats.warnings) console.error(`warning: ${w}`);
  console.error(`${stats.packets} packets (${stats.decoded} decoded, ${stats.truncated} truncated, ${stats.malformed} malformed, ${stats.not_ip} not IP), ${stats.flows} flows`);
  return 0;
}

main().then((code) => process.exit(code), (e: unknown) => { console.error(`classify: ${(e as Error).message}`); process.exit(1); });
