// One process of `npm run bench:classifier`: classify a playlist `loops` times with the given plug-ins; prints stats.
import { readFileSync } from "node:fs";
import { classifyFiles } from "../classifier-native/index.ts";

const [playlist, loops, plugins] = process.argv.slice(2) as [string, string, string];
const files = readFileSync(playlist, "utf8").trim().split("\n");
const started = performance.now();
const { flows, stats } = await classifyFiles(Array.from({ length: Number(loops) }, () => files).flat(), { plugins: plugins.split(",") });
console.log(JSON.stringify({ packets: stats.packets, flows: flows.length, seconds: (performance.now() - started) / 1000 }));
