#!/usr/bin/env node
// `npx vantage …` in a clone: runs cli/vantage.ts with the Node 22 this package installs (npm's `node` package), since
// the Node on PATH may be older and unable to run TypeScript.
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const bundled = join(root, "node_modules", "node", "bin", "node");
const node = existsSync(bundled) ? bundled : process.execPath;
const run = spawnSync(node, [join(root, "cli", "vantage.ts"), ...process.argv.slice(2)], { stdio: "inherit" });
process.exit(run.status ?? 1);
