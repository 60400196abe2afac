// One process of `npm run bench:classifier`: classify a playlist `loops` times with the given plug-ins and combiner,
// keeping only the traffic per application (as `ndpiReader -q` keeps only its summary); prints stats.
import { readFileSync } from "node:fs";
import { classifyFiles, type ClassifyOptions } from "../classifier-native/index.ts";

const [playlist, loops, plugins, combiner] = process.argv.slice(2) as [string, string, string, ClassifyOptions["combiner"]];
const files = readFileSync(playlist, "utf8").trim().split("\n");
const started = performance.now();
const { stats, apps } = await classifyFiles(Array.from({ length: Number(loops) }, () => files).flat(), { plugins: plugins.split(","), combiner, flows: false });
console.log(JSON.stringify({ packets: stats.packets, flows: stats.flows, apps: apps.length, seconds: (performance.now() - started) / 1000 }));
