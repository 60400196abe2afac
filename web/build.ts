// Builds the web console (docs/web.md) into web/dist, the Worker's static assets (wrangler.toml [assets]): one ES
// module bundle of web/src, its page and stylesheet, the world's countries (Natural Earth 1:110m from world-atlas,
// served from the edge itself: no tile server, no CDN), and `_headers`, which gives every asset a strict
// Content-Security-Policy. Run by wrangler before `wrangler dev` and `wrangler deploy` ([build]), and by the
// set-up step when web/src is newer than the bundle. Each file is written beside its place and renamed into it,
// so concurrent builds (the tests start several edges at once) never serve a half-written file.
import { build } from "esbuild";
import { copyFileSync, mkdirSync, renameSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { join } from "node:path";

const here = import.meta.dirname;
export const WEB_DIST = join(here, "dist");

/** What the console may load: its own files and API only; no inline script or style, no frames, no plugins. */
export const CONTENT_SECURITY_POLICY = [
  "default-src 'none'", "script-src 'self'", "style-src 'self'", "img-src 'self' data:", "connect-src 'self'",
  "base-uri 'none'", "form-action 'self'", "frame-ancestors 'none'",
].join("; ");

function place(name: string, write: (tmp: string) => void): void {
  const tmp = join(WEB_DIST, `.${name}.${process.pid}.tmp`);
  write(tmp);
  renameSync(tmp, join(WEB_DIST, name));
}

export async function buildWeb(): Promise<void> {
  mkdirSync(WEB_DIST, { recursive: true });
  const out = await build({
    entryPoints: [join(here, "src", "main.ts")], bundle: true, format: "esm", target: "es2022", minify: true,
    write: false, legalComments: "none", logLevel: "warning",
  });
  place("app.js", (tmp) => writeFileSync(tmp, out.outputFiles[0]!.contents));
  for (const file of ["index.html", "app.css", "favicon.svg"]) place(file, (tmp) => copyFileSync(join(here, file), tmp));
  const require = createRequire(import.meta.url);
  place("uplot.css", (tmp) => copyFileSync(require.resolve("uplot/dist/uPlot.min.css"), tmp));
  place("countries-110m.json", (tmp) => copyFileSync(require.resolve("world-atlas/countries-110m.json"), tmp));
  place("_headers", (tmp) => writeFileSync(tmp, `/*\n  Content-Security-Policy: ${CONTENT_SECURITY_POLICY}\n  X-Content-Type-Options: nosniff\n  Referrer-Policy: no-referrer\n`));
}

if (import.meta.main) await buildWeb();
