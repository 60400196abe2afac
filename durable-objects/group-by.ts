// One helper the objects share for grouping in linear time.

/** Items grouped by key, in first-seen order of the keys and input order within each group. */
export function groupBy<K, V>(items: readonly V[], key: (v: V) => K): Map<K, V[]> {
  const groups = new Map<K, V[]>();
  for (const v of items) {
    const k = key(v);
    const g = groups.get(k);
    if (g) g.push(v);
    else groups.set(k, [v]);
  }
  return groups;
}
