// `npm test`: type-check, then every vitest project, then one closing line "N passed, N failed, N skipped" that
// CI reads. Skipped tests have already printed why they could not run here.
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const bin = (name: string) => join(import.meta.dirname, "..", "node_modules", ".bin", name);

// The edge, agent and tests; then the web console (browser code, with the DOM's types instead of the Workers').
const tsc = ["tsconfig.json", "web/tsconfig.json"].map((project) => spawnSync(bin("tsc"), ["--noEmit", "-p", project], { stdio: "inherit" }));
if (tsc.some((t) => t.status !== 0)) {
  console.error("type-check failed");
  console.log("0 passed, 1 failed");
  process.exit(1);
}

const report = join(mkdtempSync(join(tmpdir(), "vantage-test-")), "vitest.json");
const run = spawnSync(bin("vitest"), ["run", "--reporter=default", "--reporter=json", `--outputFile.json=${report}`, ...process.argv.slice(2)], { stdio: "inherit" });
let summary: { numPassedTests: number; numFailedTests: number; numPendingTests: number; numTodoTests: number; numTotalTests: number };
try {
  summary = JSON.parse(readFileSync(report, "utf8"));
} catch {
  console.log("0 passed, 1 failed");
  process.exit(run.status || 1);
}
const skipped = summary.numPendingTests + summary.numTodoTests;
// Tests skip only for what this machine lacks (no root for namespaces, a tool bootstrap could not install). As root,
// bootstrap installs every tool the tests need (scripts/bootstrap.sh): a skip there means something is missing
// that should not be, and the run fails rather than pass having tested less (CI runs as root).
const asRoot = process.getuid?.() === 0;
if (skipped > 0 && asRoot) console.error(`${skipped} tests were skipped on a root run, where bootstrap installs everything they need: failing the run`);
console.log(`${summary.numPassedTests} passed, ${summary.numFailedTests + (skipped > 0 && asRoot ? skipped : 0)} failed, ${skipped} skipped`);
const status = run.status ?? 1;
process.exit(status !== 0 ? status : skipped > 0 && asRoot ? 1 : 0);
