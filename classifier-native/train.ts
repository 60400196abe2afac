// `npm run train:classifier [-- DIR]`: trains the statistical plug-in's decision tree and the weighted combiner's
// model from labelled captures (by default ../shared/datasets/ndpi-pcaps, against its label_upstream labels) and
// writes classifier-native/data/statistical.tsv and data/weights.tsv.
//
// The tree: CART over the transport protocol, the signed sizes of a flow's first 6 packets with payload and the
// time before each.
// The weights: for every plug-in and every label it gives, how often that answer is right — the diagonal of its
// confusion matrix — smoothed ((right + 1) / (said + 2), so a label seen a few times cannot look sure), plus a
// per-plug-in weight for labels it gave too rarely. The statistical plug-in's answers used for its weights are
// out-of-fold (a tree trained on one half answers the other), or it would be graded on flows it had learned.
// Before writing the models trained on every capture, a 2-fold cross-validation (captures split by a hash of their
// name) prints the accuracy reached on captures the models did not see, next to the priority combiner's.
import { createHash } from "node:crypto";
import { copyFileSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type ClassifyOptions, classifyFiles, DATA_DIR } from "./index.ts";
import { DATASET, loadLabels, Matcher, norm, pct, score } from "./labels.ts";
import { type Sample, trainTree, treeFile } from "./tree.ts";

/** Every plug-in the weights are learned for, cheap first: the weighted combiner asks them in this order and a sure
 * answer stops it there. */
const PLUGINS = ["port", "signature", "statistical", "ndpi"];
/** The recommended weighted configuration: without the statistical plug-in, which does not raise the
 * cross-validated accuracy (both are printed). */
const WEIGHTED = ["port", "signature", "ndpi"];
const EARLY = 0.95;
/** A winning vote lighter than this names nothing (Unknown): a lone answer from a plug-in that is rarely right. */
const MIN_VOTE = 0.2;
const TREE = { maxDepth: 12, minLeaf: 4 };
const dir = process.argv[2] ?? DATASET;
const { labels, files } = loadLabels(dir);

async function run(names: string[], options: ClassifyOptions): Promise<Matcher> {
  const m = new Matcher();
  for (const f of names) m.add(f, (await classifyFiles([join(dir, f)], options)).flows);
  return m;
}
/** Which half a capture falls in, for a given split. */
const half = (salt: string, f: string) => createHash("sha256").update(salt + f).digest()[0]! & 1;

const features = await run(files, { plugins: ["port"], features: true });
const samples = (names: Set<string>): Sample[] => labels.flatMap((l) => {
  const r = names.has(l.file) ? features.get(l) : undefined;
  return r?.features ? [{ x: r.features, y: l.label_upstream }] : [];
});

/** A data directory with the shipped tables and the given tree (and, later, its weights). */
function dataDir(tree: string): string {
  const d = mkdtempSync(join(tmpdir(), "vantage-classifier-data-"));
  for (const f of ["services.tsv", "signatures.tsv"]) copyFileSync(join(DATA_DIR, f), join(d, f));
  writeFileSync(join(d, "statistical.tsv"), tree);
  return d;
}

/** The statistical plug-in's answers on `names`, out of fold: trained on one half, answering the other. */
async function statisticalOutOfFold(names: string[]): Promise<Matcher> {
  const m = new Matcher();
  for (const k of [0, 1]) {
    const train = new Set(names.filter((f) => half("inner", f) !== k));
    const d = dataDir(treeFile(trainTree(samples(train), TREE), "inner fold"));
    for (const f of names.filter((f) => half("inner", f) === k)) m.add(f, (await classifyFiles([join(dir, f)], { plugins: ["statistical"], dataDir: d })).flows);
  }
  return m;
}

const fixed = new Map<string, Matcher>();
for (const p of ["port", "signature", "ndpi"]) fixed.set(p, await run(files, { plugins: [p] }));

type Count = { said: number; right: number };
function weightsFile(names: Set<string>, answers: Map<string, Matcher>): string {
  const lines = [
    `# vantage-classifier-weights 1: trained by classifier-native/train.ts on ${labels.filter((l) => names.has(l.file)).length} labelled flows of ${names.size} captures (label_upstream)`,
    "# plugin\tlabel\tsaid\tright\tweight   (label * = the plug-in's weight for labels not listed)",
    `early\t${EARLY}`,
    `min\t${MIN_VOTE}`,
  ];
  for (const p of PLUGINS) {
    const counts = new Map<string, Count>();
    const all: Count = { said: 0, right: 0 };
    for (const l of labels) {
      const r = names.has(l.file) ? answers.get(p)!.get(l) : undefined;
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

/** Both models trained on `names`, in a data directory. */
async function train(names: string[]): Promise<{ tree: string; weights: string }> {
  const set = new Set(names);
  const tree = treeFile(trainTree(samples(set), TREE), `trained by classifier-native/train.ts on ${samples(set).length} labelled flows of ${set.size} captures (label_upstream)`);
  const answers = new Map([...fixed, ["statistical", await statisticalOutOfFold(names)]]);
  return { tree, weights: weightsFile(set, answers) };
}

const outcome = { weighted: new Matcher(), withStatistical: new Matcher(), priority: new Matcher(), statistical: new Matcher() };
for (const k of [0, 1]) {
  const test = files.filter((f) => half("outer", f) === k);
  const models = await train(files.filter((f) => half("outer", f) !== k));
  const d = dataDir(models.tree);
  writeFileSync(join(d, "weights.tsv"), models.weights);
  for (const f of test) {
    const at = (o: ClassifyOptions) => classifyFiles([join(dir, f)], { dataDir: d, ...o }).then((r) => r.flows);
    outcome.weighted.add(f, await at({ plugins: WEIGHTED, combiner: "weighted" }));
    outcome.withStatistical.add(f, await at({ plugins: PLUGINS, combiner: "weighted" }));
    outcome.statistical.add(f, await at({ plugins: ["statistical"] }));
    outcome.priority.add(f, await at({ plugins: ["signature", "ndpi", "port"] }));
  }
}
const line = (name: string, s: ReturnType<typeof score>) => console.log(`${name.padEnd(44)} ${pct(s.flows).padStart(8)} ${pct(s.bytes).padStart(8)} ${pct(s.agreement).padStart(10)}`);
console.log(`${files.length} captures, ${labels.length} labelled flows; 2-fold cross-validation (trained on one half, scored on the other)\n`);
console.log(`${"".padEnd(44)} ${"flows".padStart(8)} ${"bytes".padStart(8)} ${"4.2 DPI".padStart(10)}`);
line(`weighted (${WEIGHTED.join(", ")})`, score(labels, outcome.weighted));
line(`weighted (${PLUGINS.join(", ")})`, score(labels, outcome.withStatistical));
line("statistical alone", score(labels, outcome.statistical));
line("priority signature → ndpi → port", score(labels, outcome.priority));

const models = await train(files);
writeFileSync(join(DATA_DIR, "statistical.tsv"), models.tree);
writeFileSync(join(DATA_DIR, "weights.tsv"), models.weights);
console.log(`\nmodels trained on all ${files.length} captures: ${join(DATA_DIR, "statistical.tsv")}, ${join(DATA_DIR, "weights.tsv")}`);
