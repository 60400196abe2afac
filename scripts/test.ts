// `npm test`: type-check, then every vitest project, then one closing line "N passed, N failed, N skipped" that
// CI reads. Skipped tests have already printed why they could not run here.
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const bin = (name: string) => join(import.meta.dirname, "..", "node_modules", ".bin", name);

const tsc = spawnSync(bin("tsc"), ["--noEmit", "-p", "tsconfig.json"], { stdio: "inherit" });
if (tsc.status !== 0) {
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
console.log(`${summary.numPassedTests} passed, ${summary.numFailedTests} failed, ${skipped} skipped`);
process.exit(run.status ?? 1);
