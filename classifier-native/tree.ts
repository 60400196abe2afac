// CART decision trees (Gini impurity, binary splits on one numeric feature) for the statistical plug-in: trained
// here, written as statistical.tsv, evaluated by src/statistical_plugin.cc. Nodes are numbered in pre-order, so a
// split's children always come after it (the loader checks that: no loops).

export type Sample = { x: number[]; y: string };
export type TreeNode =
  | { leaf: true; label: string; confidence: number; samples: number }
  | { leaf: false; feature: number; threshold: number; left: number; right: number };

export type TreeOptions = { maxDepth: number; minLeaf: number };

export function trainTree(samples: Sample[], o: TreeOptions): TreeNode[] {
  const nodes: TreeNode[] = [];
  const features = samples[0]?.x.length ?? 0;

  const leaf = (idx: number[]): TreeNode => {
    const counts = new Map<string, number>();
    for (const i of idx) counts.set(samples[i]!.y, (counts.get(samples[i]!.y) ?? 0) + 1);
    const [label, n] = [...counts].sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]))[0] ?? ["Unknown", 0];
    return { leaf: true, label, confidence: Math.round((100 * n) / Math.max(1, idx.length)), samples: idx.length };
  };

  /** The split of idx with the lowest weighted Gini impurity, if it improves on not splitting. */
  const bestSplit = (idx: number[]) => {
    const total = new Map<string, number>();
    for (const i of idx) total.set(samples[i]!.y, (total.get(samples[i]!.y) ?? 0) + 1);
    let sumSq = 0;
    for (const c of total.values()) sumSq += c * c;
    const n = idx.length;
    let best = { impurity: n - sumSq / n - 1e-9, feature: -1, threshold: 0 };
    for (let f = 0; f < features; f++) {
      const sorted = [...idx].sort((a, b) => samples[a]!.x[f]! - samples[b]!.x[f]!);
      const left = new Map<string, number>(), right = new Map(total);
      let sqL = 0, sqR = sumSq;
      for (let k = 0; k < n - 1; k++) {
        const y = samples[sorted[k]!]!.y;
        const cl = left.get(y) ?? 0, cr = right.get(y)!;
        sqL += 2 * cl + 1;
        sqR -= 2 * cr - 1;
        left.set(y, cl + 1);
        right.set(y, cr - 1);
        const nl = k + 1, nr = n - nl;
        const a = samples[sorted[k]!]!.x[f]!, b = samples[sorted[k + 1]!]!.x[f]!;
        if (a === b || nl < o.minLeaf || nr < o.minLeaf) continue;
        const impurity = nl - sqL / nl + nr - sqR / nr;
        if (impurity < best.impurity) best = { impurity, feature: f, threshold: (a + b) / 2 };
      }
    }
    return best.feature < 0 ? null : best;
  };

  const build = (idx: number[], depth: number): number => {
    const id = nodes.length;
    nodes.push(leaf(idx));
    if (depth >= o.maxDepth || idx.length < 2 * o.minLeaf || new Set(idx.map((i) => samples[i]!.y)).size === 1) return id;
    const split = bestSplit(idx);
    if (!split) return id;
    const leftIdx = idx.filter((i) => samples[i]!.x[split.feature]! <= split.threshold);
    const rightIdx = idx.filter((i) => samples[i]!.x[split.feature]! > split.threshold);
    const left = build(leftIdx, depth + 1);
    const right = build(rightIdx, depth + 1);
    nodes[id] = { leaf: false, feature: split.feature, threshold: split.threshold, left, right };
    return id;
  };
  build(samples.map((_, i) => i), 0);
  return nodes;
}

/** statistical.tsv, format 1. */
export function treeFile(nodes: TreeNode[], provenance: string): string {
  const lines = [`# vantage-classifier-statistical 1: ${provenance}`, "# features: 0 = IP protocol, 1-6 = signed IP sizes of the first packets with payload (+ up, - down), 7-12 = ms before each"];
  nodes.forEach((n, id) => lines.push(n.leaf ? ["leaf", id, n.label, n.confidence, n.samples].join("\t") : ["split", id, n.feature, n.threshold, n.left, n.right].join("\t")));
  return lines.join("\n") + "\n";
}
