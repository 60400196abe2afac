// Builds the probe agent as it ships: one executable ES module, probe-agent/dist/vantage-probe.mjs, which loads the
// native addon from probe-agent/native/build. `npm run build:probe`; `npm run probe`, `npm start`, the node tests and
// `npm run bench:agent` build it from the current sources first.
//
// Why a bundle: a probe runs on small appliances. Running the TypeScript sources directly costs Node's type stripper
// (~15 MB RSS) and hundreds of module records; the bundle is plain JavaScript, minified, with only what the agent
// reaches. Node built-ins are loaded with require() rather than `import`: an ES import of node:http builds an ESM
// facade that touches every export, including the lazy `WebSocket` getter that loads undici and compiles its llhttp
// WebAssembly (~8 MB) though the agent never uses it.
import { build, type Plugin } from "esbuild";
import { chmodSync, readFileSync } from "node:fs";
import { builtinModules } from "node:module";
import { join } from "node:path";

export const BUNDLE = join(import.meta.dirname, "dist", "vantage-probe.mjs");
/**
 * V8 flags the agent runs with, traded for memory (measured with `npm run bench:agent`): lite mode (no optimising
 * compilers, lazily allocated feedback: −10 MB of peak RSS at no cost in total CPU per ping result — the optimising
 * compilers save the main thread 0.05 ms and spend 0.04 on their own threads; it implies no WebAssembly, said
 * explicitly so V8 does not warn), a 1 MB young
 * generation (the agent allocates little per result; Node's default lets it grow to 16 MB) and garbage collection
 * on the main thread only.
 */
export const NODE_FLAGS = ["--lite-mode", "--no-expose-wasm", "--max-semi-space-size=1", "--single-threaded-gc"];
/** Environment the agent runs with: two malloc arenas, not one per thread-pool thread that ever allocated (−2 MB). */
export const AGENT_ENV = { MALLOC_ARENA_MAX: "2" };

/**
 * Built-ins a dependency requires at load but the agent does not use, loaded on first use instead: ws requires zlib
 * for permessage-deflate, which the agent turns off (zlib costs 0.9 MB of RSS).
 */
const LAZY_BUILTINS = ["zlib"];

/**
 * The module a built-in is bundled as: its exports behind a Proxy that answers property descriptors without asking
 * the built-in. esbuild's ES-module interop copies an imported CommonJS module's properties by their descriptors,
 * and asking node:util or node:fs for a descriptor materialises what they defer: node:util's would load streams,
 * worker_threads and assert's diff into every agent (0.6 MB of RSS measured), for `parseArgs`.
 * `lazy`: the built-in itself is required on first use (LAZY_BUILTINS).
 */
function builtinShim(name: string, lazy: boolean): string {
  const load = `require(${JSON.stringify(`node:${name.replace(/^node:/, "")}`)})`;
  return `let m${lazy ? "" : ` = ${load}`}; const b = () => (m ??= ${load});
module.exports = new Proxy({}, {
  get: (_, k) => b()[k], has: (_, k) => k in b(), ownKeys: () => Reflect.ownKeys(b()),
  getOwnPropertyDescriptor: (_, k) => (k in b() ? { configurable: true, enumerable: true, get: () => b()[k] } : undefined),
});`;
}
/** Modules whose schemas only the edge validates: building them at start would cost the agent memory for nothing. */
const EDGE_ONLY = ["protocol/index.ts", "protocol/definitions.ts", "protocol/results.ts", "protocol/probe-messages.ts"];

const builtinsByRequire: Plugin = {
  name: "builtins-by-require",
  setup(b) {
    const names = new Set(builtinModules.flatMap((m) => [m, `node:${m}`]));
    // ws masks what a client sends with bufferutil when it can load it, else in JavaScript: the agent's addon has it.
    b.onResolve({ filter: /^bufferutil$/ }, () => ({ path: join(import.meta.dirname, "native", "index.ts") }));
    b.onResolve({ filter: /^[a-z_:/]+$/ }, (args) => {
      if (args.kind === "require-call" && LAZY_BUILTINS.includes(args.path)) return { path: args.path, namespace: "lazy-builtin" };
      return names.has(args.path) && args.kind === "import-statement" ? { path: args.path, namespace: "builtin" } : undefined;
    });
    b.onLoad({ filter: /.*/, namespace: "builtin" }, (args) => ({ contents: builtinShim(args.path, false), loader: "js" }));
    b.onLoad({ filter: /.*/, namespace: "lazy-builtin" }, (args) => ({ contents: builtinShim(args.path, true), loader: "js" }));
  },
};

/**
 * Builds the agent bundle: by default the installed one, stamped with the package's version; `version` and
 * `outfile` build a release to sign (`vantage sign-release`).
 */
export async function buildProbe(o: { version?: string; outfile?: string } = {}): Promise<string> {
  const outfile = o.outfile ?? BUNDLE;
  const version = o.version ?? (JSON.parse(readFileSync(join(import.meta.dirname, "..", "package.json"), "utf8")) as { version: string }).version;
  const { metafile } = await build({
    metafile: true,
    entryPoints: [join(import.meta.dirname, "cli.ts")],
    outfile,
    define: { __VANTAGE_AGENT_VERSION__: JSON.stringify(version) },
    bundle: true,
    platform: "node",
    format: "esm",
    target: "node22",
    minify: true,
    sourcemap: "linked",
    legalComments: "linked",
    logLevel: "warning",
    plugins: [builtinsByRequire],
    // require() for the shims above and for CommonJS dependencies (ws), inside an ES module.
    // Executable with its flags: `probe-agent/dist/vantage-probe.mjs run --config FILE`.
    banner: { js: `#!/usr/bin/env -S ${Object.entries(AGENT_ENV).map(([k, v]) => `${k}=${v}`).join(" ")} node ${NODE_FLAGS.join(" ")}\nimport{createRequire as __vantageRequire}from"node:module";const require=__vantageRequire(import.meta.url);` },
  });
  const unwanted = Object.keys(metafile.inputs).filter((path) => EDGE_ONLY.some((m) => path.endsWith(m)));
  if (unwanted.length) throw new Error(`the agent bundle must not include ${unwanted.join(", ")}: import protocol/probe.ts (see its header)`);
  chmodSync(outfile, 0o755);
  return outfile;
}

if (import.meta.main) await buildProbe();
