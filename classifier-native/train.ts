// `npm run train:classifier [-- DIR]`: learns the weighted combiner's model from labelled captures (by default
// ../shared/datasets/ndpi-pcaps, against its label_upstream labels) and writes classifier-native/data/weights.tsv.
//
// Each plug-in classifies every capture alone; for every label it gives, its weight is how often that answer is
// right, smoothed ((right + 1) / (said + 2), so a label seen a few times cannot look sure), with a per-plug-in
// weight for labels it gave too rarely. An answer weighing at least EARLY decides a flow at once. Before writing the
// model trained on every capture, a 2-fold cross-validation (captures split by name) prints the accuracy the
// combiner reaches on captures it was not trained on, next to the priority combiner's.
import { writeFileSync } from "node:fs";
import { createHash } from "node:crypto";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type ClassifyOptions, classifyFiles, DATA_DIR, type FlowRecord } from "./index.ts";
import { DATASET, loadLabels, Matcher, norm, pct, score } from "./labels.ts";

/** Cheap first: the weighted combiner asks them in this order and a sure answer stops it there. */
const PLUGINS = ["port", "signature", "ndpi"];
const EARLY = 0.95;
const dir = process.argv[2] ?? DATASET;
const { labels, files } = loadLabels(dir);

async function run(names: string[], options: ClassifyOptions): Promise<Matcher> {
  const m = new Matcher();
  for (const f of names) m.add(f, (await classifyFiles([join(dir, f)], options)).flows);
  return m;
}

/** Each plug-in alone over every capture (what it says, and when). */
const alone = new Map<string, Matcher>();
for (const p of PLUGINS) alone.set(p, await run(files, { plugins: [p] }));

type Count = { said: number; right: number };
function model(names: Set<string>): string {
  const lines = [
    `# vantage-classifier-weights 1: trained by classifier-native/train.ts on ${labels.filter((l) => names.has(l.file)).length} labelled flows of ${names.size} captures (label_upstream)`,
    "# plugin\tlabel\tsaid\tright\tweight   (label * = the plug-in's weight for labels not listed)",
    `early\t${EARLY}`,
  ];
  for (const p of PLUGINS) {
    const counts = new Map<string, Count>();
    const all: Count = { said: 0, right: 0 };
    for (const l of labels) {
      if (!names.has(l.file)) continue;
      const r: FlowRecord | undefined = alone.get(p)!.get(l);
      if (!r || r.plugin !== p) continue;  // the plug-in gave no answer on this flow
      const c = counts.get(r.label) ?? { said: 0, right: 0 };
      const right = norm(r.label) === norm(l.label_upstream) ? 1 : 0;
      c.said++; c.right += right; all.said++; all.right += right;
      counts.set(r.label, c);
    }
    const weight = (c: Count) => ((c.right + 1) / (c.said + 2)).toFixed(4);
    lines.push([p, "*", all.said, all.right, weight(all)].join("\t"));
    for (const [label, c] of [...counts].sort((a, b) => a[0].localeCompare(b[0]))) lines.push([p, label, c.said, c.right, weight(c)].join("\t"));
  }
  return lines.join("\n") + "\n";
}

// Cross-validation: which fold a capture is in depends only on its name.
const fold = (f: string) => createHash("sha256").update(f).digest()[0]! & 1;
const results: { weighted: Matcher; priority: Matcher }[] = [];
for (const k of [0, 1]) {
  const train = new Set(files.filter((f) => fold(f) !== k));
  const test = files.filter((f) => fold(f) === k);
  const weights = join(tmpdir(), `vantage-weights-fold${k}-${process.pid}.tsv`);
  writeFileSync(weights, model(train));
  results.push({ weighted: await run(test, { plugins: PLUGINS, combiner: "weighted", weights }), priority: await run(test, { plugins: ["signature", "ndpi", "port"] }) });
}
const merged = (pick: "weighted" | "priority") => {
  const m = new Matcher();
  for (const r of results) for (const l of labels) { const x = r[pick].get(l); if (x) m.add(l.file, [x]); }
  return m;
};
const line = (name: string, s: ReturnType<typeof score>) => console.log(`${name.padEnd(34)} ${pct(s.flows).padStart(10)} ${pct(s.bytes).padStart(10)} ${pct(s.agreement).padStart(12)}`);
console.log(`${files.length} captures, ${labels.length} labelled flows; 2-fold cross-validation (trained on one half, scored on the other)\n`);
console.log(`${"".padEnd(34)} ${"flows".padStart(10)} ${"bytes".padStart(10)} ${"4.2 DPI".padStart(12)}`);
line("weighted (port, signature, ndpi)", score(labels, merged("weighted")));
line("priority signature → ndpi → port", score(labels, merged("priority")));

const out = join(DATA_DIR, "weights.tsv");
writeFileSync(out, model(new Set(files)));
console.log(`\nmodel trained on all ${files.length} captures: ${out}`);
