// `npm run bench:web`: the web console's quality bars (issue #15) in Debian's headless Chromium against a local edge
// holding `BENCH_WEB_PROBES` probes (15,000 by default, enrolled through the operator API at places spread over the
// land): the probe map's first render (from navigation to the map drawn with every probe binned), panning (frames a
// second while the map is dragged), and the first view's size (every file it loads, gzip-compressed as an edge
// would send it); and the DNSMON grid of a ping measurement with `BENCH_GRID_PROBES` (100) simulated probes × 200 runs
// (20,000 cells): the grid's own work from the results to the drawn grid, and the whole view from navigation.
// Not a test: the numbers depend on the machine (state it when you record them).
import { generateKeyPairSync } from "node:crypto";
import { gzipSync } from "node:zlib";
import { chromium } from "playwright-core";
import { admin } from "../scripts/local.ts";
import { enrollProbes, fanOut, joinProbes, next, pingResult, pool, type SimProbe, withBenchEdge } from "./sim.ts";

const PROBES = Number(process.env.BENCH_WEB_PROBES ?? 15_000);
const GRID_PROBES = Number(process.env.BENCH_GRID_PROBES ?? 100);
/** Runs per probe on the grid: 100 probes × 200 runs = DNSMON's 20,000 cells. */
const GRID_RUNS = 200;
const GRID_INTERVAL = 60;

/**
 * Each probe's `runs` results of a periodic ping, one a run `GRID_INTERVAL` s apart ending now, RTTs varied so the
 * grid has colours to draw; 50 results a frame, each frame after the last one's ack.
 */
async function sendRuns(probes: SimProbe[], msm: number, runs: number, base: number): Promise<void> {
  await Promise.all(probes.map(async (p) => {
    for (let f = 0; f * 50 < runs; f++) {
      const results = Array.from({ length: Math.min(50, runs - f * 50) }, (_, i) => {
        const seq = f * 50 + i + 1;
        const rtt = 5 + ((p.id * 7 + seq * 13) % 300);
        return { seq, result: { ...pingResult(msm, p.id, base + seq * GRID_INTERVAL), min: rtt, avg: rtt + 1, max: rtt + 2, result: [{ rtt }, { rtt: rtt + 1 }, { rtt: rtt + 2 }] } };
      });
      p.ws!.send(JSON.stringify({ type: "results", results }));
      await next(p, "ack");
    }
  }));
}
const CHROMIUM = "/usr/bin/chromium";

/** A deterministic spread of places: around a few hundred cities' worth of centres, jittered. */
function place(i: number): { latitude: number; longitude: number } {
  let x = Math.imul(i + 1, 2654435761) >>> 0;
  const next = () => ((x = Math.imul(x ^ (x >>> 15), 2246822519) >>> 0) / 2 ** 32);
  const centre = Math.floor(next() * 300);
  const lat = ((centre * 37) % 120) - 50, lon = ((centre * 71) % 340) - 170;
  return { latitude: Math.max(-60, Math.min(70, lat + (next() - 0.5) * 6)), longitude: lon + (next() - 0.5) * 8 };
}

async function main(): Promise<void> {
  // The grid's results are from the past 200 minutes, and 200 a probe: the clock-skew and extra-runs checks a
  // controller applies to a live probe are widened for the simulated ones (as in the edge tests).
  await withBenchEdge("bench-web", {
    RESULT_CLOCK_SKEW_S: String(GRID_RUNS * GRID_INTERVAL + 3600), RESULT_EXTRA_RUNS: "1000000", QUOTA_RESULTS_PER_DAY: "100000000",
  }, async (b) => {
    const t0 = performance.now();
    const ids = Array.from({ length: PROBES }, (_, i) => i);
    await pool(ids, 32, async (i) => {
      const jwk = generateKeyPairSync("ed25519").publicKey.export({ format: "jwk" });
      await admin(b.edge, "/admin/probes", { public_key: jwk.x, description: `bench probe ${i}`, country_code: "NL", asn_v4: 64496 + (i % 500), ...place(i) });
    });
    console.log(`${PROBES} probes enrolled in ${((performance.now() - t0) / 1000).toFixed(0)} s\n`);

    const browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ["--no-sandbox", "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1", "--disable-background-networking", "--disable-component-update"],
    });
    try {
      const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
      // What the first view loads: the console's own files apart from the API's data (the probes, ~1 KB each).
      const loaded: { url: string; body: Buffer }[] = [];
      let recording = true;
      page.on("response", (r) => { if (recording) void r.body().then((body) => loaded.push({ url: r.url(), body }), () => {}); });
      const runs: number[] = [];
      for (let run = 0; run < 3; run++) {
        await page.goto("about:blank");
        await page.goto(`${b.edge.url}/#/probes`);
        await page.waitForFunction((n) => document.querySelector("#probe-count")?.getAttribute("data-count") === String(n) && document.querySelector("canvas.map")?.hasAttribute("data-bins"), PROBES, { timeout: 120_000, polling: "raf" });
        runs.push(await page.evaluate(() => performance.now()));
        recording = false;
      }
      const files = loaded.filter((f) => !new URL(f.url).pathname.startsWith("/api/"));
      const data = loaded.filter((f) => new URL(f.url).pathname.startsWith("/api/"));
      const gzip = (fs: typeof loaded) => fs.reduce((n, f) => n + gzipSync(f.body).length, 0);
      const firstViewGzip = gzip(files);

      // Panning: drag across the map for two seconds while the page counts the frames it paints.
      const box = (await page.locator("canvas.map").boundingBox())!;
      await page.evaluate(() => {
        const w = window as unknown as { frames_: number; counting: boolean };
        w.frames_ = 0; w.counting = true;
        const tick = () => { if (!w.counting) return; w.frames_++; requestAnimationFrame(tick); };
        requestAnimationFrame(tick);
      });
      const start = performance.now();
      await page.mouse.move(box.x + box.width / 2, box.y + box.height / 2);
      await page.mouse.down();
      let step = 0;
      while (performance.now() - start < 2000) {
        step++;
        await page.mouse.move(box.x + box.width / 2 + 200 * Math.sin(step / 10), box.y + box.height / 2 + 100 * Math.cos(step / 10));
      }
      await page.mouse.up();
      const seconds = (performance.now() - start) / 1000;
      const frames = await page.evaluate(() => { const w = window as unknown as { frames_: number; counting: boolean }; w.counting = false; return w.frames_; });
      const fps = frames / seconds;
      const render = runs.sort((x, y) => x - y)[1]!;

      // The DNSMON grid: simulated probes send a periodic ping's runs, then the grid of them is opened three times.
      const sims = await enrollProbes(b.edge, GRID_PROBES);
      await joinProbes(b.edge, sims);
      const { msm, given } = await fanOut(b.edge, b.key, sims, GRID_PROBES);
      const now = Math.floor(Date.now() / 1000);
      const base = now - GRID_RUNS * GRID_INTERVAL - 30;
      await sendRuns(given, msm, GRID_RUNS, base);
      const gridUrl = `${b.edge.url}/#/measurements/${msm}/grid?start=${base + 1}&stop=${base + 1 + GRID_RUNS * GRID_INTERVAL}&colour=rtt`;
      const gridRuns: { own: number; whole: number; cells: number }[] = [];
      for (let run = 0; run < 3; run++) {
        await page.goto("about:blank");
        await page.goto(gridUrl);
        await page.waitForSelector("canvas.grid[data-cells]", { timeout: 120_000 });
        gridRuns.push(await page.evaluate(() => {
          const c = document.querySelector("canvas.grid")!;
          return { own: Number(c.getAttribute("data-render-ms")), whole: performance.now(), cells: Number(c.getAttribute("data-cells")) };
        }));
      }
      // The results alone, as the API answers them to Node (what of the whole view is the edge's).
      const apiMs: number[] = [];
      let bytes = 0;
      for (let run = 0; run < 3; run++) {
        const t = performance.now();
        const body = await (await fetch(`${b.edge.url}/api/v2/measurements/${msm}/results/?start=${base + 1}&stop=${base + GRID_RUNS * GRID_INTERVAL}`)).text();
        apiMs.push(performance.now() - t);
        bytes = body.length;
      }
      const median = (xs: number[]) => xs.sort((x, y) => x - y)[1]!;
      const gridOwn = median(gridRuns.map((r) => r.own)), gridWhole = median(gridRuns.map((r) => r.whole));

      const row = (name: string, value: string, target: string, ok: boolean | null) =>
        console.log(`${name.padEnd(52)} ${value.padStart(10)}   target ${target.padEnd(10)} ${ok === null ? "" : ok ? "met" : "NOT met"}`);
      row(`probe map, ${PROBES} probes: first render (ms, median of 3)`, render.toFixed(0), "≤ 1000", render <= 1000);
      row(`  the three runs (ms)`, runs.map((r) => r.toFixed(0)).join(" / "), "—", null);
      row("probe map: frames a second while panning", fps.toFixed(1), "≥ 30", fps >= 30);
      row(`  mouse moves in ${seconds.toFixed(1)} s`, String(step), "—", null);
      row(`first view, the console's ${files.length} files (KB, gzip)`, (firstViewGzip / 1024).toFixed(0), "≤ 300", firstViewGzip <= 300 * 1024);
      row(`  and the probes' data, ${data.length} API pages (KB, gzip)`, (gzip(data) / 1024).toFixed(0), "—", null);
      row(`DNSMON grid, ${gridRuns[0]!.cells} cells: from results to drawn (ms)`, gridOwn.toFixed(0), "≤ 500", gridOwn <= 500);
      row(`  the whole view from navigation, results fetched (ms)`, gridWhole.toFixed(0), "—", null);
      row(`  of which the API's answer, ${(bytes / 1e6).toFixed(1)} MB of results (ms)`, median(apiMs).toFixed(0), "—", null);
      row(`  the three runs, drawn / whole (ms)`, gridRuns.map((r) => `${r.own.toFixed(0)}/${r.whole.toFixed(0)}`).join(" "), "—", null);
      console.log(`\nratios to target: first render ${(render / 1000).toFixed(2)}× the budget, panning ${(fps / 30).toFixed(2)}× the floor, first view ${(firstViewGzip / 307_200).toFixed(2)}× the budget, grid ${(gridOwn / 500).toFixed(2)}× the budget`);
    } finally {
      await browser.close();
    }
  });
}

// (Functions given to page.evaluate run in the browser.)
declare const document: { querySelector(s: string): { getAttribute(a: string): string | null; hasAttribute(a: string): boolean } | null };
declare const window: unknown;
declare function requestAnimationFrame(fn: () => void): number;

main().then(() => process.exit(0), (e: unknown) => { console.error(e); process.exit(1); });
