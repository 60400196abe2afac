#!/usr/bin/env node
// `npm run classify -- [options] <captures…>`: classify capture files offline, one record per flow.
import { readFileSync } from "node:fs";
import { parseArgs } from "node:util";
import { classifyFiles, textLine } from "./index.ts";

const USAGE = `usage: npm run classify -- [--format text|jsonl] [--bpf EXPR] [--plugins port] [--playlist FILE] [--loop N] <captures…>
Offline mode (files). Live capture (-i), realtime and cyclic modes come with the next plug-ins (issue #4).`;

async function main(): Promise<number> {
  const { values, positionals } = parseArgs({
    allowPositionals: true,
    options: {
      format: { type: "string", default: "text" }, bpf: { type: "string" }, plugins: { type: "string" },
      playlist: { type: "string" }, loop: { type: "string", default: "1" }, mode: { type: "string", default: "offline" },
      interface: { type: "string", short: "i" }, help: { type: "boolean", short: "h" },
    },
  });
  if (values.help) { console.log(USAGE); return 0; }
  if (values.interface || values.mode !== "offline") { console.error(`only --mode offline on files is available so far\n${USAGE}`); return 2; }
  if (values.format !== "text" && values.format !== "jsonl") { console.error(`--format must be text or jsonl\n${USAGE}`); return 2; }
  const loop = Number(values.loop);
  if (!Number.isInteger(loop) || loop < 1) { console.error("--loop must be a whole number ≥ 1"); return 2; }
  const inputs = [...positionals];
  if (values.playlist) inputs.push(...readFileSync(values.playlist, "utf8").split("\n").map((l) => l.trim()).filter((l) => l && !l.startsWith("#")));
  if (inputs.length === 0) { console.error(USAGE); return 2; }
  const files = Array.from({ length: loop }, () => inputs).flat();
  const { flows, stats } = await classifyFiles(files, { bpf: values.bpf, plugins: values.plugins?.split(",") });
  for (const f of flows) console.log(values.format === "jsonl" ? JSON.stringify(f) : textLine(f));
  for (const w of stats.warnings) console.error(`warning: ${w}`);
  console.error(`${stats.packets} packets (${stats.decoded} decoded, ${stats.truncated} truncated, ${stats.malformed} malformed, ${stats.not_ip} not IP), ${stats.flows} flows`);
  return 0;
}

main().then((code) => process.exit(code), (e: unknown) => { console.error(`classify: ${(e as Error).message}`); process.exit(1); });
