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
  --format text|jsonl              TIE-like text lines (default) or JSON lines
  --socket HOST:PORT               realtime: also send each decision as a JSON line to this TCP address
  --plugins port,ndpi              plug-ins in priority order (default port)
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
    },
  });
  if (values.help) { console.log(USAGE); return 0; }
  const mode = values.mode;
  if (mode !== "offline" && mode !== "realtime" && mode !== "cyclic") { console.error(`--mode must be offline, realtime or cyclic\n${USAGE}`); return 2; }
  const interval = Number(values.interval);
  if (mode === "cyclic" && !(interval > 0)) { console.error("--interval must be a positive number of seconds"); return 2; }
  if (values.format !== "text" && values.format !== "jsonl") { console.error(`--format must be text or jsonl\n${USAGE}`); return 2; }
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
  const options = { bpf: values.bpf, plugins: values.plugins?.split(","), interval: mode === "cyclic" ? interval : undefined };
  const { flows, stats } = values.interface
    ? await classifyLive(values.interface, Number(values.duration), options, onEvent)
    : await classifyFiles(files, options, onEvent);
  if (mode === "offline") for (const f of flows) console.log(line(f));
  if (sink) await new Promise<void>((r) => sink!.end(r));
  for (const w of stats.warnings) console.error(`warning: ${w}`);
  console.error(`${stats.packets} packets (${stats.decoded} decoded, ${stats.truncated} truncated, ${stats.malformed} malformed, ${stats.not_ip} not IP), ${stats.flows} flows`);
  return 0;
}

main().then((code) => process.exit(code), (e: unknown) => { console.error(`classify: ${(e as Error).message}`); process.exit(1); });
