// `npm run accuracy:classifier [-- DIR]`: the TIE-style table over the labelled captures of
// ../shared/datasets/ndpi-pcaps (labels.jsonl: two nDPI versions' output, not ground truth). Per configuration: the
// share of flows (and of bytes) whose label matches upstream nDPI's, the agreement with Debian's nDPI 4.2 on the
// flows 4.2 decided by DPI, packets to decision, and the CPU time of a decision (plug-ins + combiner, measured in
// the addon over every capture in one run). Then the per-class table of the weighted combiner.
import { join } from "node:path";
import { type ClassifyOptions, classifyFiles, type FlowRecord } from "./index.ts";
import { DATASET, loadLabels, Matcher, norm, pct, score } from "./labels.ts";

const dir = process.argv[2] ?? DATASET;
const { labels, files } = loadLabels(dir);
const all = ["signature", "ndpi", "port"];
const configs: [string, ClassifyOptions][] = [
  ["port", { plugins: ["port"] }], ["signature", { plugins: ["signature"] }], ["statistical", { plugins: ["statistical"] }],
  ["ndpi", { plugins: ["ndpi"] }],
  ["port → ndpi", { plugins: ["port", "ndpi"] }], ["priority sig → ndpi → port", { plugins: all }],
  ["majority", { plugins: all, combiner: "majority" }], ["weighted port, sig, stat, ndpi", { plugins: ["port", "signature", "statistical", "ndpi"], combiner: "weighted" }],
  ["weighted port, sig, ndpi", { plugins: ["port", "signature", "ndpi"], combiner: "weighted" }],
];
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1] ?? 0;
console.log(`${files.length} captures, ${labels.length} labelled flows (statistical and weighted: the models in data/, trained on these`);
console.log("captures; npm run train:classifier prints their cross-validated accuracy)\n");
console.log("configuration                    upstream (flows)  upstream (bytes)  agrees with 4.2 DPI  µs/decision (mean)  median  packets to decision");
let weighted: Matcher | null = null;
for (const [name, options] of configs) {
  const m = new Matcher();
  const toDecision: number[] = [];
  for (const file of files) {
    const { flows } = await classifyFiles([join(dir, file)], options);
    for (const r of flows) toDecision.push(r.packets_to_decision);
    m.add(file, flows);
  }
  if (options.combiner === "weighted") weighted = m;
  const { stats } = await classifyFiles(files.map((f) => join(dir, f)), { ...options, flows: false, timing: true });
  const t = Object.values(stats.timing ?? {});
  const decisions = t.reduce((a, x) => a + x.decisions, 0);
  const mean = t.reduce((a, x) => a + x.mean_us * x.decisions, 0) / Math.max(1, decisions);
  const s = score(labels, m);
  const medianUs = median(t.flatMap((x) => Array(x.decisions).fill(x.median_us)));
  console.log(`${name.padEnd(32)} ${pct(s.flows).padStart(16)} ${pct(s.bytes).padStart(17)} ${pct(s.agreement).padStart(20)} ${mean.toFixed(2).padStart(19)} ${medianUs.toFixed(2).padStart(7)} ${String(median(toDecision)).padStart(20)}`);
  if (options.combiner === "weighted") {
    // The cheap path: flows a sure answer of port or signature decided before nDPI was asked.
    for (const [p, x] of Object.entries(stats.timing ?? {})) {
      console.log(`  decided by ${p.padEnd(16)} ${String(x.decisions).padStart(5)} flows, median ${x.median_us.toFixed(2)} µs, p90 ${x.p90_us.toFixed(2)} µs`);
    }
  }
}

// Per class (upstream label), the weighted combiner: flows, share right, and what it said instead when wrong.
console.log("\nweighted combiner per upstream class (classes with ≥ 10 flows):\nclass                 flows   right   most frequent wrong answer");
const byClass = new Map<string, { n: number; right: number; wrong: Map<string, number> }>();
for (const l of labels) {
  const r: FlowRecord | undefined = weighted!.get(l);
  if (!r) continue;
  const c = byClass.get(l.label_upstream) ?? { n: 0, right: 0, wrong: new Map() };
  c.n++;
  if (norm(r.label) === norm(l.label_upstream)) c.right++;
  else c.wrong.set(r.label, (c.wrong.get(r.label) ?? 0) + 1);
  byClass.set(l.label_upstream, c);
}
for (const [label, c] of [...byClass].filter(([, c]) => c.n >= 10).sort((a, b) => b[1].n - a[1].n)) {
  const [worst] = [...c.wrong].sort((a, b) => b[1] - a[1]);
  console.log(`${label.padEnd(20)} ${String(c.n).padStart(6)} ${pct(c.right / c.n).padStart(8)}   ${worst ? `${worst[0]} (${worst[1]})` : ""}`);
}
