// The web console in a real browser (Debian's Chromium, driven by playwright-core) against the real local system:
// the edge serving its own assets, three connected agents, and a probe whose host wrote markup into its description.
import { generateKeyPairSync } from "node:crypto";
import { createSocket } from "node:dgram";
import { existsSync, mkdirSync, readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { join } from "node:path";
import dnsPacket from "dns-packet";
import { type Browser, chromium, type Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { admin } from "../../scripts/local.ts";
import { icmpUnavailable, tempDir, useLocalSystem } from "./system.ts";

// What the functions given to page.evaluate/waitForFunction see: they run in the browser, not in this process.
declare const document: { querySelector(s: string): { textContent: string | null; getAttribute(a: string): string | null } | null };
declare const window: Record<string, unknown>;
declare const location: { hash: string };

const CHROMIUM = "/usr/bin/chromium";
const noIcmp = icmpUnavailable();
/** What a probe's host may write: markup and a script URL, which the console must show as text. */
const HOSTILE = `<img src=x onerror="window.pwned=1"><script>window.pwned=2</script> javascript:alert(1)`;
/** Screenshots of every view (the test output says where). */
const SHOTS = process.env.VANTAGE_SCREENSHOTS ?? tempDir("web-screenshots");

describe("the web console in Chromium", () => {
  const local = useLocalSystem("web");
  let browser: Browser;
  let hostileId: number;

  beforeAll(async () => {
    if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing: npm test installs Debian's chromium as root`);
    // Nothing but loopback can be resolved or reached (Chromium calls Google's hosts by itself otherwise).
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ["--no-sandbox", "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1", "--disable-background-networking", "--disable-component-update"],
    });
    const jwk = generateKeyPairSync("ed25519").publicKey.export({ format: "jwk" });
    hostileId = (await admin<{ id: number }>(local().edge, "/admin/probes", {
      public_key: jwk.x, description: HOSTILE, country_code: "BR", asn_v4: 64499, latitude: -23.5, longitude: -46.6, tags: ["javascript-alert"],
    })).id;
    mkdirSync(SHOTS, { recursive: true });
    console.log(`web console screenshots: ${SHOTS}`);
  });
  afterAll(async () => { await browser?.close(); });

  /** A fresh tab that fails the test on any script error, CSP violation or dialog. */
  async function tab(): Promise<{ page: Page; problems: string[] }> {
    const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    const problems: string[] = [];
    page.on("pageerror", (e) => problems.push(`page error: ${e.message}`));
    page.on("console", (m) => { if (m.type() === "error") problems.push(`console error: ${m.text()} (${m.location().url})`); });
    page.on("dialog", (d) => { problems.push(`dialog: ${d.message()}`); void d.dismiss(); });
    // Every request stays on the edge itself.
    page.on("request", (r) => { if (!r.url().startsWith(local().edge.url) && !r.url().startsWith("data:")) problems.push(`request off the edge: ${r.url()}`); });
    return { page, problems };
  }

  /** axe-core's serious and critical violations on the page as it is. */
  async function violations(page: Page): Promise<string[]> {
    // Evaluated through the DevTools protocol, which the page's CSP does not govern (an injected <script> it would refuse).
    await page.evaluate(readFileSync(createRequire(import.meta.url).resolve("axe-core/axe.min.js"), "utf8"));
    return page.evaluate(async () => {
      const run = (window.axe as { run: () => Promise<{ violations: { id: string; impact: string; nodes: unknown[] }[] }> }).run;
      return (await run()).violations.filter((v) => v.impact === "serious" || v.impact === "critical").map((v) => `${v.id} (${v.impact}, ${v.nodes.length})`);
    });
  }

  /** Where the one bin of a map of one connected probe is: the only saturated green on the canvas. */
  function greenBin(page: Page): Promise<{ x: number; y: number } | null> {
    return page.evaluate(() => {
      const c = document.querySelector("canvas.map") as unknown as {
        width: number; height: number; clientWidth: number; getContext(t: "2d"): { getImageData(x: number, y: number, w: number, h: number): { data: Uint8ClampedArray } } | null;
      };
      const d = c.getContext("2d")!.getImageData(0, 0, c.width, c.height).data;
      const scale = c.width / c.clientWidth;
      for (let i = 0; i < d.length; i += 4) {
        if (d[i + 1]! > 100 && d[i + 1]! > d[i]! + 50 && d[i + 1]! > d[i + 2]! + 40) {
          const p = i / 4;
          return { x: (p % c.width) / scale, y: Math.floor(p / c.width) / scale };
        }
      }
      return null;
    });
  }

  const count = async (page: Page) => Number(await page.locator("#probe-count[data-count]").getAttribute("data-count"));

  it("serves the console from the edge with a strict CSP, and shows every probe on the map and in the list", async () => {
    const { page, problems } = await tab();
    const res = await page.goto(`${local().edge.url}/`);
    expect(res!.status()).toBe(200);
    const csp = res!.headers()["content-security-policy"] ?? "";
    expect(csp).toContain("script-src 'self'");
    expect(csp).toContain("default-src 'none'");
    expect(csp).not.toContain("unsafe-inline");
    await page.waitForSelector("#probe-count[data-count]");
    expect(await count(page)).toBe(4);
    expect(await page.locator("#probe-count").textContent()).toBe("4 probes (3 connected)");
    expect(Number(await page.locator("canvas.map").getAttribute("data-bins"))).toBeGreaterThanOrEqual(3);
    // The API still answers as JSON, not with the console's page.
    expect((await (await fetch(`${local().edge.url}/api/v2/nothing-here/`)).json())).toMatchObject({ error: { status: 404 } });
    await page.screenshot({ path: join(SHOTS, "probe-map.png") });
    expect(problems).toEqual([]);
    await page.close();
  });

  it("renders what a probe's host wrote as text, never as markup", async () => {
    const { page, problems } = await tab();
    await page.goto(`${local().edge.url}/#/probes`);
    await page.waitForSelector("#probe-count[data-count]");
    const cell = page.locator("table tbody tr", { hasText: String(hostileId) }).locator("td").nth(1);
    expect(await cell.textContent()).toBe(HOSTILE);
    await page.goto(`${local().edge.url}/#/probes/${hostileId}`);
    await page.waitForSelector("dl.facts");
    expect(await page.locator("dl.facts dd").first().textContent()).toBe(HOSTILE);
    expect(await page.evaluate(() => window.pwned)).toBeUndefined();
    expect(await page.locator("main img, main script").count()).toBe(0);
    await page.screenshot({ path: join(SHOTS, "probe-page-hostile.png") });
    expect(problems).toEqual([]);
    await page.close();
  });

  it("filters by country in the URL, goes back, hovers a bin for its counts and clicks through to the probe", async () => {
    const { page, problems } = await tab();
    const nl = ((await (await fetch(`${local().edge.url}/api/v2/probes/?country_code=NL`)).json()) as { results: { id: number }[] }).results[0]!.id;
    await page.goto(`${local().edge.url}/#/probes`);
    await page.waitForSelector("#probe-count[data-count]");
    await page.fill("input[name=country_code]", "NL");
    await page.click("form.filters button[type=submit]");
    await page.waitForFunction(() => document.querySelector("#probe-count")?.getAttribute("data-count") === "1");
    expect(page.url()).toContain("country_code=NL");
    // The permalink opens the same view in another tab.
    const other = await browser.newPage();
    await other.goto(page.url());
    await other.waitForSelector("#probe-count[data-count]");
    expect(await count(other)).toBe(1);
    await other.close();
    const at = await greenBin(page);
    expect(at).not.toBeNull();
    const box = (await page.locator("canvas.map").boundingBox())!;
    await page.mouse.move(box.x + at!.x + 2, box.y + at!.y + 2);
    await page.waitForSelector(".tip:not([hidden])");
    expect(await page.locator(".tip").textContent()).toMatch(/^1 probe: 1 connected, 0 not\n1 AS, diversity 0\.00\nprobe \d+ — click for its page$/);
    await page.screenshot({ path: join(SHOTS, "probe-map-nl-hover.png") });
    await page.mouse.click(box.x + at!.x + 2, box.y + at!.y + 2);
    await page.waitForSelector("dl.facts");
    expect(page.url()).toMatch(new RegExp(`#/probes/${nl}$`));
    expect(await page.locator("h1").textContent()).toBe(`Probe ${nl}`);
    expect(await page.locator("dl.facts").textContent()).toContain("Connected since");
    await page.screenshot({ path: join(SHOTS, "probe-page.png") });
    // Back to the filtered map, and back again to all probes.
    await page.goBack();
    await page.waitForFunction(() => document.querySelector("#probe-count")?.getAttribute("data-count") === "1");
    await page.goBack();
    await page.waitForFunction(() => document.querySelector("#probe-count")?.getAttribute("data-count") === "4");
    expect(problems).toEqual([]);
    await page.close();
  });

  it("picks probes on the map and takes them to the new-measurement form", async () => {
    const { page, problems } = await tab();
    const nl = ((await (await fetch(`${local().edge.url}/api/v2/probes/?country_code=NL`)).json()) as { results: { id: number }[] }).results[0]!.id;
    await page.goto(`${local().edge.url}/#/probes?country_code=NL`);
    await page.waitForSelector("#probe-count[data-count]");
    await page.check("#pick-mode");
    const at = (await greenBin(page))!;
    const box = (await page.locator("canvas.map").boundingBox())!;
    await page.mouse.click(box.x + at.x + 2, box.y + at.y + 2);
    await page.waitForSelector("#picked[data-count='1']");
    expect(page.url()).toContain("#/probes?country_code=NL");  // picking does not leave the map
    // The keyboard does the same: n brings the bin under the crosshair (its numbers in the tip), Enter puts it back,
    // and Enter again picks it.
    await page.focus("canvas.map");
    await page.keyboard.press("n");
    await page.waitForSelector(".tip:not([hidden])");
    expect(await page.locator(".tip").textContent()).toMatch(/^1 probe: 1 connected, 0 not\n.*\nclick to pick or put back$/s);
    await page.keyboard.press("Enter");
    await page.waitForSelector("#picked[data-count='0']", { state: "attached" });  // empty, so not visible
    await page.keyboard.press("Enter");
    await page.waitForSelector("#picked[data-count='1']");
    await page.click("#picked a");
    await page.waitForSelector("#measurement-form");
    expect(await page.inputValue("#source-0-type")).toBe("probes");
    expect(await page.inputValue("#source-0-value")).toBe(String(nl));
    expect(await page.inputValue("#source-0-requested")).toBe("1");
    // The filter's own link: probes of that country as the source.
    await page.goBack();
    await page.waitForSelector("#probe-count[data-count]");
    await page.click("text=Measure from probes like these");
    await page.waitForSelector("#measurement-form");
    expect([await page.inputValue("#source-0-type"), await page.inputValue("#source-0-value")]).toEqual(["country", "NL"]);
    expect(problems).toEqual([]);
    await page.close();
  });

  it("zooms and pans from the keyboard, the view kept in the URL", async () => {
    const { page, problems } = await tab();
    await page.goto(`${local().edge.url}/#/probes`);
    await page.waitForSelector("#probe-count[data-count]");
    await page.focus("canvas.map");
    await page.keyboard.press("+");
    await page.keyboard.press("ArrowLeft");
    expect(new URL(page.url()).hash).toMatch(/[?&]z=1\.5(&|$)/);
    const c = new URLSearchParams(new URL(page.url()).hash.split("?")[1]).get("c")!;
    expect(Number(c.split(",")[0])).toBeLessThan(0);  // panned west of the centre
    await page.reload();
    await page.waitForSelector("#probe-count[data-count]");
    expect(new URL(page.url()).hash).toContain("z=1.5");
    expect(problems).toEqual([]);
    await page.close();
  });

  it("has no serious or critical accessibility violation (axe-core) on the map or a probe's page (a measurement's: below)", async () => {
    const { page, problems } = await tab();
    await page.goto(`${local().edge.url}/#/probes`);
    await page.waitForSelector("#probe-count[data-count]");
    expect(await violations(page)).toEqual([]);
    await page.goto(`${local().edge.url}/#/probes/${local().probes[0]!.id}`);
    await page.waitForSelector("dl.facts");
    expect(await violations(page)).toEqual([]);
    expect(problems).toEqual([]);
    await page.close();
  });

  it.skipIf(noIcmp !== null)("shows a ping measurement's results arriving live, its RTT chart, and the chart's numbers as CSV", async () => {
    const { page, problems } = await tab();
    // A one-off that starts in a few seconds: the page is open before any result exists.
    const created = await fetch(`${local().edge.url}/api/v2/measurements/`, {
      method: "POST", headers: { Authorization: `Key ${local().key}`, "Content-Type": "application/json" },
      body: JSON.stringify({
        definitions: [{ type: "ping", af: 4, target: "127.0.0.1", description: "web console <b>ping</b>", packets: 3, packet_interval: 200 }],
        probes: [{ type: "area", value: "WW", requested: 3 }], is_oneoff: true, start_time: Math.floor(Date.now() / 1000) + 8,
      }),
    });
    expect(created.status, await created.clone().text()).toBe(201);
    const id = ((await created.json()) as { measurements: number[] }).measurements[0]!;
    // Opened from the header's measurement box, as a user with an id would.
    await page.goto(`${local().edge.url}/#/probes`);
    await page.fill("#measurement-id", String(id));
    await page.press("#measurement-id", "Enter");
    await page.waitForSelector("#result-count[data-live=on]");
    expect(page.url()).toMatch(new RegExp(`#/measurements/${id}$`));
    expect(await page.locator("#result-count").getAttribute("data-count")).toBe("0");
    expect(await page.locator("#results-window").textContent()).toMatch(/^Results since \d{4}-\d\d-\d\dT/);
    expect(await page.locator("dl.facts dd").first().textContent()).toBe("web console <b>ping</b>");
    await page.waitForFunction(() => document.querySelector("#result-count")?.getAttribute("data-count") === "3", undefined, { timeout: 60_000 });
    expect(await page.locator("#result-table tbody tr").count()).toBe(3);
    expect(Number(await page.locator("#latency-chart").getAttribute("data-points"))).toBeGreaterThanOrEqual(1);
    expect(await page.locator("#latency-chart canvas").count()).toBeGreaterThan(0);
    const [file] = await Promise.all([page.waitForEvent("download"), page.click(`button[data-download="measurement-${id}-rtt.csv"]`)]);
    const csv = readFileSync((await file.path())!, "utf8").trim().split("\n");
    expect(csv[0]).toBe("time,probes,min_ms,median_ms,max_ms");
    // The chart's numbers are the stored results': three probes in all, the lowest minimum and the highest maximum
    // of them, and (one row for a one-off's single round) the median of their averages.
    const stored = (await (await fetch(`${local().edge.url}/api/v2/measurements/${id}/results/`)).json()) as { min: number; avg: number; max: number }[];
    const rows = csv.slice(1).map((l) => l.split(",").slice(1).map(Number) as [number, number, number, number]);
    expect(rows.reduce((n, r) => n + r[0], 0)).toBe(3);
    expect(Math.min(...rows.map((r) => r[1]))).toBe(Math.min(...stored.map((r) => r.min)));
    expect(Math.max(...rows.map((r) => r[3]))).toBe(Math.max(...stored.map((r) => r.max)));
    for (const [, min, median, max] of rows) expect(min <= median && median <= max).toBe(true);
    if (rows.length === 1) expect(rows[0]![2]).toBe(stored.map((r) => r.avg).sort((a, b) => a - b)[1]);
    // By place and network: a group per country of the three probes, each probe on the RTT map and in the density, and
    // the per-country medians as the stored results give them.
    await page.waitForFunction(() => document.querySelector("#rtt-map")?.getAttribute("data-dots") === "3");
    expect((await page.getAttribute("#group-chart", "data-groups"))!.split(",").sort()).toEqual(["JP", "NL", "US"]);
    expect(await page.getAttribute("canvas.density", "data-points")).toBe("3");
    const [countries] = await Promise.all([page.waitForEvent("download"), page.click(`button[data-download="measurement-${id}-countries.csv"]`)]);
    const byCountry = readFileSync((await countries.path())!, "utf8").trim().split("\n").slice(1).map((l) => l.split(","));
    expect(byCountry.map((r) => r[0]).sort()).toEqual(["JP", "NL", "US"]);
    expect(byCountry.map((r) => Number(r[2])).sort((a, b) => a - b)).toEqual(stored.map((r) => r.avg).sort((a, b) => a - b));
    // Grouped by network, relative: the choice is in the URL, and back goes back to countries.
    await page.selectOption("#group-by", "asn");
    await page.waitForFunction(() => /group=asn/.test(location.hash));
    await page.waitForFunction(() => (document.querySelector("#group-chart")?.getAttribute("data-groups") ?? "").startsWith("AS"));
    await page.screenshot({ path: join(SHOTS, "measurement-by-network.png"), fullPage: true });
    await page.goBack();
    await page.waitForFunction(() => !/group=/.test(location.hash));
    expect(await violations(page)).toEqual([]);
    await page.screenshot({ path: join(SHOTS, "measurement-page.png") });
    expect(problems).toEqual([]);
    await page.close();
  });

  /** The 400s a form half filled in is answered with (how the form learns what to say at each field) are no fault. */
  const notRefusedForm = (p: string) => !/status of 400 .*\(http:\/\/127\.0\.0\.1:\d+\/api\/v2\/measurements\/(cost\/)?\)$/.test(p);

  /** A tab with the local key entered in the header's key form, as a user would. */
  async function signedIn(): Promise<{ page: Page; problems: string[] }> {
    const t = await tab();
    await t.page.goto(`${local().edge.url}/#/probes`);
    await t.page.fill("#api-key", local().key);
    await t.page.click("#key-form button[type=submit]");
    await t.page.waitForFunction(() => /^key in use/.test(document.querySelector("#key-state")?.textContent ?? ""));
    return t;
  }

  it.skipIf(noIcmp !== null)("creates a ping from the form: priced first, an error shown at its field, then results arriving live", async () => {
    const { page, problems } = await signedIn();
    await page.click("nav a[href='#/measurements/new']");
    await page.waitForSelector("#measurement-form");
    expect(await violations(page)).toEqual([]);
    await page.fill("#f-target", "127.0.0.1");
    await page.fill("#f-description", "from the form <i>x</i>");
    await page.fill("#f-packets", "99");
    await page.fill("#source-0-requested", "3");
    // The API's own error, at the field it names, before anything is sent.
    await page.click("#create");
    await page.waitForFunction(() => (document.querySelector("#f-packets-error")?.textContent ?? "") !== "");
    expect(await page.locator("#f-packets-error").textContent()).toMatch(/16/);
    expect(await page.getAttribute("#f-packets", "aria-invalid")).toBe("true");
    expect(await page.locator("#f-packets").evaluate((e) => e === (document as unknown as { activeElement: unknown }).activeElement)).toBe(true);
    await page.screenshot({ path: join(SHOTS, "new-measurement-error.png") });
    // Fixed: priced as creating would reserve it (a one-off ping of 3 packets: 6 credits × 3 probes).
    await page.fill("#f-packets", "3");
    await page.fill("#f-packet_interval", "200");
    await page.waitForFunction(() => document.querySelector("#price")?.getAttribute("data-credits") === "18");
    expect(await page.locator("#f-packets-error").textContent()).toBe("");
    // The form is in the URL: reloading it shows the same form, priced the same.
    expect(new URL(page.url()).hash).toContain("packet_interval=200");
    await page.reload();
    await page.waitForFunction(() => document.querySelector("#price")?.getAttribute("data-credits") === "18");
    expect(await page.inputValue("#f-target")).toBe("127.0.0.1");
    await page.screenshot({ path: join(SHOTS, "new-measurement.png") });
    await page.click("#create");
    await page.waitForURL(/#\/measurements\/\d+$/);
    const id = Number(new URL(page.url()).hash.split("/")[2]);
    await page.waitForFunction(() => document.querySelector("#result-count")?.getAttribute("data-count") === "3", undefined, { timeout: 60_000 });
    expect(await page.locator("dl.facts dd").first().textContent()).toBe("from the form <i>x</i>");
    const stored = (await (await fetch(`${local().edge.url}/api/v2/measurements/${id}/`)).json()) as { type: string; target: string; is_oneoff: boolean; participant_count: number };
    expect(stored).toMatchObject({ type: "ping", target: "127.0.0.1", is_oneoff: true });
    expect(Number(await page.locator("#latency-chart").getAttribute("data-points"))).toBeGreaterThanOrEqual(1);
    // The same question again is offered as the earlier measurement's results, at no cost.
    await page.goBack();
    await page.waitForSelector(`#price [data-duplicate="${id}"]`);
    await page.click(`#price [data-duplicate="${id}"] a`);
    await page.waitForURL(new RegExp(`#/measurements/${id}$`));
    expect(problems.filter(notRefusedForm)).toEqual([]);
    await page.close();
  });

  it("stops a periodic measurement from its page", async () => {
    const { page, problems } = await signedIn();
    await page.goto(`${local().edge.url}/#/measurements/new?type=dns&oneoff=false`);
    await page.waitForSelector("#measurement-form");
    expect(await page.isChecked("#kind-periodic")).toBe(true);
    await page.selectOption("#f-query_type", "TXT");
    await page.fill("#f-query_argument", "example.org");
    await page.fill("#f-target", "127.0.0.1");
    await page.fill("#f-description", "to be stopped");
    await page.fill("#f-interval", "600");
    // A periodic DNS query over UDP: 10 credits × 10 probes × 144 runs in the first day.
    await page.waitForFunction(() => document.querySelector("#price")?.getAttribute("data-credits") === "14400");
    expect(await violations(page)).toEqual([]);
    await page.click("#create");
    await page.waitForSelector("#stop-measurement");
    const id = Number(new URL(page.url()).hash.split("/")[2]);
    await page.click("#stop-measurement");
    await page.click("#stop-measurement");  // the second click confirms
    await page.waitForFunction(() => document.querySelector("dl.facts")?.textContent?.includes("Stopped") ?? false);
    expect(((await (await fetch(`${local().edge.url}/api/v2/measurements/${id}/`)).json()) as { status: { name: string } }).status.name).toBe("Stopped");
    expect(await page.locator("#stop-measurement").count()).toBe(0);
    await page.screenshot({ path: join(SHOTS, "measurement-stopped.png") });
    expect(problems.filter(notRefusedForm)).toEqual([]);
    await page.close();
  });

  /** Where on the grid's canvas the cell of a probe's result at a time is (from the geometry the grid states). */
  async function gridCell(page: Page, probe: number, timestamp: number): Promise<{ x: number; y: number }> {
    const g = await page.locator("canvas.grid").evaluate((c) => ({ ...(c as unknown as { dataset: Record<string, string> }).dataset }));
    const col = Math.floor((timestamp - Number(g.t0)) / ((Number(g.t1) - Number(g.t0)) / Number(g.cols)));
    const row = g.rows!.split(",").indexOf(String(probe));
    expect(row).toBeGreaterThanOrEqual(0);
    const box = (await page.locator("canvas.grid").boundingBox())!;
    return { x: box.x + Number(g.gutter) + (col + 0.5) * Number(g.cellW), y: box.y + Number(g.axis) + (row + 0.5) * Number(g.cellH) };
  }

  /** A one-off from every connected probe, created through the API, and its results once all are stored. */
  async function oneOff(definition: Record<string, unknown>, n = 3): Promise<{ id: number; results: { prb_id: number; timestamp: number; avg?: number }[] }> {
    const res = await fetch(`${local().edge.url}/api/v2/measurements/`, {
      method: "POST", headers: { Authorization: `Key ${local().key}`, "Content-Type": "application/json" },
      body: JSON.stringify({ definitions: [{ af: 4, target: "127.0.0.1", ...definition }], probes: [{ type: "area", value: "WW", requested: n }], is_oneoff: true }),
    });
    expect(res.status, await res.clone().text()).toBe(201);
    const id = ((await res.json()) as { measurements: number[] }).measurements[0]!;
    for (let i = 0; i < 120; i++) {
      const results = (await (await fetch(`${local().edge.url}/api/v2/measurements/${id}/results/`)).json()) as { prb_id: number; timestamp: number; avg?: number }[];
      if (results.length >= n) return { id, results };
      await new Promise((r) => setTimeout(r, 500));
    }
    throw new Error(`measurement ${id}: fewer than ${n} results after 60 s`);
  }

  it.skipIf(noIcmp !== null)("draws a measurement's DNSMON grid with each cell's numbers, zooms by dragging, and clicks through to a traceroute", async () => {
    const { page, problems } = await signedIn();
    // Ping: each cell's numbers are its result's.
    const ping = await oneOff({ type: "ping", description: "grid ping", packets: 3, packet_interval: 200 });
    await page.goto(`${local().edge.url}/#/measurements/${ping.id}`);
    await page.click(`a[href='#/measurements/${ping.id}/grid']`);
    await page.waitForSelector("canvas.grid[data-cells]");
    expect((await page.getAttribute("canvas.grid", "data-rows"))!.split(",").sort()).toEqual(ping.results.map((r) => String(r.prb_id)).sort());
    for (const r of ping.results) {
      const at = await gridCell(page, r.prb_id, r.timestamp);
      await page.mouse.move(at.x, at.y);
      await page.waitForSelector(".tip:not([hidden])");
      expect(await page.locator(".tip").textContent()).toContain(`probe ${r.prb_id}, `);
      expect(await page.locator(".tip").textContent()).toContain(`median RTT ${r.avg!.toFixed(1)} ms, 0 % lost, 1 result`);
    }
    expect(await violations(page)).toEqual([]);
    await page.screenshot({ path: join(SHOTS, "grid-ping.png") });
    // Dragging across the results' time zooms into it: the window is in the URL, and back zooms out again.
    const span = async () => Number(await page.getAttribute("canvas.grid", "data-t1")) - Number(await page.getAttribute("canvas.grid", "data-t0"));
    const whole = await span();
    const around = await gridCell(page, ping.results[0]!.prb_id, ping.results[0]!.timestamp);
    await page.mouse.move(around.x - 30, around.y);
    await page.mouse.down();
    await page.mouse.move(around.x + 30, around.y, { steps: 5 });
    await page.mouse.up();
    await page.waitForFunction((w) => {
      const c = document.querySelector("canvas.grid");
      return /[?&]start=\d+/.test(location.hash) && !!c && Number(c.getAttribute("data-t1")) - Number(c.getAttribute("data-t0")) < w;
    }, whole);
    await page.goBack();
    // The default window again (it ends now while the measurement runs, so it may have grown by a second).
    await page.waitForFunction((w) => {
      const c = document.querySelector("canvas.grid");
      return !/[?&]start=/.test(location.hash) && !!c && Number(c.getAttribute("data-t1")) - Number(c.getAttribute("data-t0")) >= w;
    }, whole);

    // DNS to a port where nothing answers: every cell says so; its probe has no traceroute yet, so one is started.
    const dns = await oneOff({ type: "dns", description: "grid dns", query_type: "A", query_argument: "example.org", timeout: 1000 });
    await page.goto(`${local().edge.url}/#/measurements/${dns.id}/grid`);
    await page.waitForSelector("canvas.grid[data-cells]");
    const first = dns.results[0]!;
    const cell = await gridCell(page, first.prb_id, first.timestamp);
    await page.mouse.move(cell.x, cell.y);
    await page.waitForSelector(".tip:not([hidden])");
    expect(await page.locator(".tip").textContent()).toContain("no answer, 100 % lost, 1 result");
    await page.mouse.click(cell.x, cell.y);
    await page.waitForSelector("#start-traceroute");
    await page.screenshot({ path: join(SHOTS, "grid-dns-no-traceroute.png") });
    await page.click("#start-traceroute");
    await page.waitForURL(/#\/measurements\/\d+$/);
    await page.waitForSelector(`table.path[data-probe="${first.prb_id}"]`, { timeout: 60_000 });
    await page.screenshot({ path: join(SHOTS, "traceroute-paths.png") });
    // Back on the grid, the same cell now opens that traceroute (from the keyboard this time: the keys start on the
    // newest column with results, which for a one-off is its only one).
    await page.goBack();
    await page.waitForSelector("canvas.grid[data-cells]");
    const rows = (await page.getAttribute("canvas.grid", "data-rows"))!.split(",");
    await page.focus("canvas.grid");
    for (let i = 0; i < rows.length; i++) await page.keyboard.press("ArrowUp");
    for (let i = 0; i < rows.indexOf(String(first.prb_id)); i++) await page.keyboard.press("ArrowDown");
    await page.keyboard.press("Enter");
    await page.waitForSelector(`#cell-detail table.path[data-probe="${first.prb_id}"]`);
    expect(await page.locator("#cell-detail .numbers").textContent()).toMatch(new RegExp(`^probe ${first.prb_id}, .*no answer, 100 % lost, 1 result$`, "s"));
    expect(await page.locator("#cell-detail").textContent()).toContain("(the nearest)");
    await page.screenshot({ path: join(SHOTS, "grid-dns-traceroute.png") });

    // Targets × time (DNSMON's servers view): a row per measurement, its probes' results together in each cell; a
    // cell opens that measurement's probes at that time.
    await page.click("text=compare with other measurements (targets × time)");
    await page.waitForSelector("#targets-form");
    await page.fill("#targets-msm", `${ping.id}, ${dns.id}`);
    await page.click("#targets-form button[type=submit]");
    await page.waitForFunction((rows) => document.querySelector("canvas.grid")?.getAttribute("data-rows") === rows, `${ping.id},${dns.id}`);
    const sorted = ping.results.map((r) => r.avg!).sort((a, b) => a - b);
    const pingAt = await gridCell(page, ping.id, ping.results[1]!.timestamp);
    await page.mouse.move(pingAt.x, pingAt.y);
    await page.waitForSelector(".tip:not([hidden])");
    // The three probes ran within seconds: one cell, the median of their three averages.
    if (new Set(ping.results.map((r) => Math.floor(r.timestamp / 60))).size === 1) {
      expect(await page.locator(".tip").textContent()).toContain(`median RTT ${sorted[1]!.toFixed(1)} ms, 0 % lost, 3 results`);
    }
    expect(await violations(page)).toEqual([]);
    await page.screenshot({ path: join(SHOTS, "grid-targets.png") });
    const dnsAt = await gridCell(page, dns.id, first.timestamp);
    await page.mouse.click(dnsAt.x, dnsAt.y);
    await page.waitForURL(new RegExp(`#/measurements/${dns.id}/grid\\?start=\\d+&stop=\\d+`));
    await page.waitForFunction((probe) => (document.querySelector("canvas.grid")?.getAttribute("data-rows") ?? "").split(",").includes(probe), String(first.prb_id));
    expect(problems).toEqual([]);
    await page.close();
  });

  it("shows a DNS server's hostile answers and a measurement's hostile tags as text", async () => {
    // A server on another loopback address that answers every question with markup and a script URL.
    const server = createSocket("udp4");
    server.on("message", (msg, from) => {
      const q = dnsPacket.decode(msg);
      server.send(dnsPacket.encode({
        id: q.id, type: "response", flags: dnsPacket.AUTHORITATIVE_ANSWER, questions: q.questions,
        answers: [{ type: "TXT", name: q.questions![0]!.name, ttl: 60, data: [HOSTILE] }],
      }), from.port, from.address);
    });
    await new Promise<void>((resolve, reject) => { server.once("error", reject); server.bind(53, "127.0.0.2", () => resolve()); });
    try {
      const { page, problems } = await tab();
      const dns = await oneOff({ type: "dns", target: "127.0.0.2", description: "hostile answers", query_type: "TXT", query_argument: "example.org",
        tags: ["<script>window.pwned=3</script>", "javascript:alert(2)"] }, 1);
      await page.goto(`${local().edge.url}/#/measurements/${dns.id}`);
      await page.waitForSelector("#result-count[data-live=on]");
      await page.waitForFunction(() => document.querySelector("#result-count")?.getAttribute("data-count") === "1");
      expect(await page.locator("#result-table tbody td").nth(2).textContent()).toBe(`NOERROR in ${(dns.results[0] as unknown as { result: { rt: number } }).result.rt.toFixed(2)} ms: example.org TXT ${HOSTILE}`);
      expect(await page.locator("dl.facts dd").nth(1).textContent()).toBe("<script>window.pwned=3</script>, javascript:alert(2)");
      expect(await page.evaluate(() => window.pwned)).toBeUndefined();
      expect(await page.locator("main img, main script").count()).toBe(0);
      await page.screenshot({ path: join(SHOTS, "measurement-dns-hostile.png") });
      expect(problems).toEqual([]);
      await page.close();
    } finally {
      server.close();
    }
  });

  it("sizes countries by their probes, networks or a measurement's results (cartogram), with the numbers in a table", async () => {
    const { page, problems } = await tab();
    await page.goto(`${local().edge.url}/#/probes`);
    await page.click("nav a[href='#/cartogram']");
    await page.waitForSelector("#cartogram[data-countries]");
    const rows = async () => page.locator("#cartogram-table tbody tr").evaluateAll((trs) => trs.map((tr) => (tr as unknown as { textContent: string }).textContent));
    // The three agents' countries and the hostile probe's, one probe each.
    expect((await rows()).sort()).toEqual(["BR1", "JP1", "NL1", "US1"]);
    expect(await page.getAttribute("#cartogram", "data-countries")).toBe("4");
    expect(await violations(page)).toEqual([]);
    await page.screenshot({ path: join(SHOTS, "cartogram.png") });
    // By a measurement's results: only the countries whose probes delivered some.
    const ping = await oneOff({ type: "ping", description: "cartogram", packets: 1 }, 2);
    await page.selectOption("#cartogram-by", "results");
    await page.fill("#cartogram-msm", String(ping.id));
    await page.click("#cartogram-form button[type=submit]");
    await page.waitForFunction(() => /by=results&msm=\d+/.test(location.hash) && document.querySelector("#cartogram-status")?.textContent?.includes("results in"));
    const counted = (await rows()).map((r) => Number(r!.slice(2))).reduce((a, b) => a + b, 0);
    const stored = ((await (await fetch(`${local().edge.url}/api/v2/measurements/${ping.id}/results/`)).json()) as unknown[]).length;
    expect(counted).toBe(stored);
    expect(problems).toEqual([]);
    await page.close();
  });

  it("shows the account: credits with the balance over time, and keys made with grants, disabled and deleted", async () => {
    const { page, problems } = await signedIn();
    await page.click("nav a[href='#/account']");
    await page.waitForSelector("#key-list");
    const credits = (await (await fetch(`${local().edge.url}/api/v2/credits/`, { headers: { Authorization: `Key ${local().key}` } })).json()) as { current_balance: number };
    expect(await page.locator("dl.facts dd").first().textContent()).toBe(credits.current_balance.toLocaleString("en"));
    // The chart's last point is the balance now (the walk back through the journal ends where it started).
    await page.waitForSelector("#balance-chart[data-points]");
    expect(Number(await page.getAttribute("#balance-chart", "data-points"))).toBeGreaterThanOrEqual(1);
    expect(await page.locator("#credit-items tbody tr").count()).toBeGreaterThanOrEqual(1);
    expect(await violations(page)).toEqual([]);
    // A key that may only read credits: shown once, and it works for what it may do and nothing else.
    await page.fill("#new-key-label", "read-only <b>dashboard</b>");
    await page.uncheck("#grant-create_measurements");
    await page.uncheck("#grant-stop_measurements");
    await page.click("#key-create button[type=submit]");
    await page.waitForSelector("#new-key-value");
    const made = (await page.locator("#new-key-value").textContent())!;
    const as = (key: string, path: string) => fetch(`${local().edge.url}${path}`, { headers: { Authorization: `Key ${key}` } });
    expect((await as(made, "/api/v2/credits/")).status).toBe(200);
    expect((await fetch(`${local().edge.url}/api/v2/measurements/cost/`, { method: "POST", headers: { Authorization: `Key ${made}`, "Content-Type": "application/json" }, body: "{}" })).status).toBe(403);
    await page.screenshot({ path: join(SHOTS, "account.png") });
    // Listed (its label as text), then disabled: it stops working; then deleted.
    await page.reload();
    const row = page.locator("#key-list tbody tr", { hasText: "read-only <b>dashboard</b>" });
    await row.waitFor();
    expect(await row.locator("td").nth(1).textContent()).toBe("get_credits");
    await row.locator("button[data-key-toggle]").click();
    await page.waitForFunction(() => document.querySelector("#key-said")?.textContent?.endsWith("disabled.") ?? false);
    expect((await as(made, "/api/v2/credits/")).status).toBe(403);
    await page.locator("#key-list tbody tr", { hasText: "read-only" }).locator("button[data-key-delete]").click();
    await page.locator("#key-list tbody tr", { hasText: "read-only" }).locator("button[data-key-delete]").click();
    await page.waitForFunction(() => document.querySelector("#key-said")?.textContent?.endsWith("deleted.") ?? false);
    expect(await page.locator("#key-list tbody tr", { hasText: "read-only" }).count()).toBe(0);
    expect(problems).toEqual([]);
    await page.close();
  });

  it("moves a probe to disconnected live, from the stream's probe status, without a reload", async () => {
    const { page, problems } = await tab();
    await page.goto(`${local().edge.url}/#/probes`);
    await page.waitForSelector("#live[data-live=on]");
    expect(await page.locator("#probe-count").textContent()).toBe("4 probes (3 connected)");
    const agent = local().agents[0]!;
    await agent.stop();
    await page.waitForFunction(() => document.querySelector("#probe-count")?.textContent === "4 probes (2 connected)", undefined, { timeout: 30_000 });
    const row = page.locator("table tbody tr", { hasText: String(agent.probe.id) });
    expect(await row.locator("td").nth(2).textContent()).toBe("Disconnected");
    await page.screenshot({ path: join(SHOTS, "probe-map-live.png") });
    expect(problems).toEqual([]);
    await page.close();
  });

  it("takes an API key for the tab only: never in a URL, gone when the tab closes, refused keys said so", async () => {
    const { page, problems } = await tab();
    const requests: string[] = [];
    page.on("request", (r) => requests.push(r.url()));
    await page.goto(`${local().edge.url}/#/probes`);
    await page.fill("#api-key", "not-a-key");
    await page.click("#key-form button[type=submit]");
    await page.waitForFunction(() => document.querySelector("#key-state")?.textContent?.startsWith("key refused"));
    await page.fill("#api-key", local().key);
    await page.click("#key-form button[type=submit]");
    await page.waitForFunction(() => /^key in use: [\d,]+ credits$/.test(document.querySelector("#key-state")?.textContent ?? ""));
    expect(await page.inputValue("#api-key")).toBe("");
    expect(requests.some((u) => u.includes(local().key))).toBe(false);
    expect(page.url()).not.toContain(local().key);
    await page.screenshot({ path: join(SHOTS, "key.png") });
    // A new tab (a new session) is anonymous again.
    const other = await browser.newPage();
    await other.goto(`${local().edge.url}/#/probes`);
    await other.waitForFunction(() => document.querySelector("#key-state")?.textContent === "anonymous");
    await other.close();
    await page.click("#key-forget");
    await page.waitForFunction(() => document.querySelector("#key-state")?.textContent === "anonymous");
    // The refused key's 403 is the page's own doing, not an error of the console.
    expect(problems.filter((p) => !/status of 403/.test(p))).toEqual([]);
    await page.close();
  });
});
