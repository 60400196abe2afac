// The edge's modules form no import cycle (type-only imports included): a Durable Object does not import a type
// from a module that imports it, so each module can be read, and moved, on its own (issue #14).
import { readdirSync, readFileSync } from "node:fs";
import { dirname, join, normalize, relative } from "node:path";
import { describe, expect, it } from "vitest";
import { ROOT } from "../../scripts/local.ts";

function modules(dir: string): string[] {
  return readdirSync(join(ROOT, dir), { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? modules(join(dir, e.name)) : e.name.endsWith(".ts") && !e.name.endsWith(".d.ts") ? [join(dir, e.name)] : []);
}

/** Each cycle once, as the path that closes it. */
function cycles(graph: Map<string, string[]>): string[] {
  const found = new Set<string>();
  const done = new Set<string>();
  const visit = (node: string, path: string[]) => {
    for (const next of graph.get(node) ?? []) {
      const at = path.indexOf(next);
      if (at >= 0) found.add([...path.slice(at), next].join(" → "));
      else if (!done.has(next)) visit(next, [...path, next]);
    }
    done.add(node);
  };
  for (const node of graph.keys()) if (!done.has(node)) visit(node, [node]);
  return [...found];
}

describe("the edge's module graph", () => {
  it("has no import cycle in durable-objects/, workers/, protocol/ or storage/", () => {
    const graph = new Map<string, string[]>();
    for (const file of ["durable-objects", "workers", "protocol", "storage"].flatMap(modules)) {
      const text = readFileSync(join(ROOT, file), "utf8");
      graph.set(file, [...text.matchAll(/from "(\.[^"]+)"/g)].map((m) => relative(".", normalize(join(dirname(file), m[1]!)))));
    }
    expect(graph.size).toBeGreaterThan(40);
    expect(cycles(graph)).toEqual([]);
  });

  it("finds a cycle when there is one (the check itself)", () => {
    expect(cycles(new Map([["a.ts", ["b.ts"]], ["b.ts", ["c.ts"]], ["c.ts", ["a.ts"]]]))).toEqual(["a.ts → b.ts → c.ts → a.ts"]);
  });
});
