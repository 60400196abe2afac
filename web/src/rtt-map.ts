// The RTT map: every probe of a ping measurement a dot coloured by its RTT (10 ms dark green → 300 ms and more red,
// as RIPE's K-root map; no answer: black), and played over time as CAIDA's animated maps: play, pause, and a slider
// to scrub through the measurement's runs (arrow keys move it a run at a time). The frame shown is in the URL (`t`).
import { geoPath } from "d3-geo";
import { download, el, sized } from "./dom.ts";
import { onLeave } from "./route.ts";
import { type PingSummary, type ProbeFacts, rttFrames, rttScale } from "./series.ts";
import { fitted, world } from "./world.ts";

export function rttMap(box: HTMLElement, msm: number, startAt: number | null, keepFrame: (t: number) => void): (results: PingSummary[], probes: Map<number, ProbeFacts>, bucket: number) => Promise<void> {
  const canvas = el("canvas", { class: "small-map", id: "rtt-map", role: "img", "aria-label": "Map of the probes coloured by their RTT at the time the slider shows" });
  const tip = el("div", { class: "tip", hidden: "" });
  const play = el("button", { type: "button", id: "rtt-play" }, "Play");
  const slider = el("input", { type: "range", id: "rtt-frame", min: "0", max: "0", value: "0", "aria-label": "Time of the frame shown" });
  const when = el("output", { id: "rtt-when", for: "rtt-frame" });
  let frames: ReturnType<typeof rttFrames> = [];
  let probes = new Map<number, ProbeFacts>();
  let dots: { x: number; y: number; probe: number; rtt: number | null }[] = [];
  let following = startAt === null;  // on the newest frame until the user picks one
  box.replaceChildren(el("h2", { id: "rtt-map-title" }, "RTT map"),
    el("p", { class: "options" }, play, " ", slider, " ", when),
    el("div", { class: "map-wrap" }, canvas, tip),
    el("div", { class: "legend" }, ...[10, 30, 100, 300].map((ms) => el("span", {}, el("span", { class: "swatch" }), `${ms === 300 ? "≥ " : ""}${ms} ms`)),
      el("span", {}, el("span", { class: "swatch lost-dot" }), "no answer")),
    el("p", { class: "downloads" }, download(`measurement-${msm}-rtt-map.csv`, "text/csv", () => ["time,probe,longitude,latitude,rtt_ms",
      ...frames.flatMap((f) => [...f.rtts].map(([p, rtt]) => {
        const at = probes.get(p)?.geometry?.coordinates;
        return `${new Date(f.t * 1000).toISOString()},${p},${at?.[0] ?? ""},${at?.[1] ?? ""},${rtt ?? ""}`;
      }))].join("\n") + "\n", "Download every frame's numbers (CSV)")));
  // The legend's swatches take their colours from the scale (set through the CSSOM: the CSP refuses style attributes).
  box.querySelectorAll<HTMLElement>(".legend .swatch:not(.lost-dot)").forEach((s, i) => { s.style.background = rttScale([10, 30, 100, 300][i]!); });

  const draw = async () => {
    const land = await world();
    const w = canvas.clientWidth || 640, h = Math.round(w / 2);
    const ctx = sized(canvas, w, h);
    const projection = fitted(w, h);
    const path = geoPath(projection, ctx);
    ctx.beginPath(); path({ type: "Sphere" }); ctx.fillStyle = "#dde7f0"; ctx.fill();
    ctx.beginPath(); path(land); ctx.fillStyle = "#f4f1ea"; ctx.fill(); ctx.strokeStyle = "#a9b4bf"; ctx.lineWidth = 0.5; ctx.stroke();
    const frame = frames[Number(slider.value)];
    dots = [];
    for (const [probe, rtt] of frame?.rtts ?? []) {
      const at = probes.get(probe)?.geometry?.coordinates;
      const xy = at ? projection(at) : null;
      if (!xy) continue;
      dots.push({ x: xy[0], y: xy[1], probe, rtt });
      ctx.beginPath(); ctx.arc(xy[0], xy[1], 4.5, 0, 2 * Math.PI);
      ctx.fillStyle = rtt === null ? "#000" : rttScale(rtt); ctx.fill();
      ctx.strokeStyle = "#fff"; ctx.lineWidth = 1; ctx.stroke();
    }
    when.textContent = frame ? `${new Date(frame.t * 1000).toISOString().replace(".000Z", "Z")} (${Number(slider.value) + 1} of ${frames.length})` : "no results yet";
    canvas.dataset.frame = String(frame?.t ?? "");
    canvas.dataset.dots = String(dots.length);
  };
  slider.addEventListener("input", () => { following = Number(slider.value) === frames.length - 1; keepFrame(frames[Number(slider.value)]!.t); void draw(); });
  let timer: ReturnType<typeof setInterval> | undefined;
  const stop = () => { clearInterval(timer); timer = undefined; play.textContent = "Play"; };
  play.addEventListener("click", () => {
    if (timer) { stop(); return; }
    if (Number(slider.value) >= frames.length - 1) slider.value = "0";
    play.textContent = "Pause";
    timer = setInterval(() => {
      const next = Number(slider.value) + 1;
      if (next >= frames.length) { stop(); following = true; return; }
      slider.value = String(next);
      keepFrame(frames[next]!.t);
      void draw();
    }, 600);
  });
  onLeave(stop);
  canvas.addEventListener("pointermove", (e) => {
    const d = dots.find((p) => (p.x - e.offsetX) ** 2 + (p.y - e.offsetY) ** 2 <= 36);
    if (!d) { tip.hidden = true; return; }
    tip.textContent = `probe ${d.probe}: ${d.rtt === null ? "no answer" : `${d.rtt.toFixed(1)} ms`}`;
    tip.style.left = `${e.offsetX + 12}px`; tip.style.top = `${e.offsetY + 12}px`;
    tip.hidden = false;
  });
  canvas.addEventListener("pointerleave", () => { tip.hidden = true; });

  return async (results, known, bucket) => {
    probes = known;
    frames = rttFrames(results, bucket);
    slider.max = String(Math.max(0, frames.length - 1));
    if (!timer) {
      const asked = startAt === null ? -1 : frames.findIndex((f) => f.t === startAt);
      slider.value = String(following || asked < 0 ? frames.length - 1 : asked);
      if (asked >= 0) startAt = null;
    }
    play.disabled = frames.length < 2;
    await draw();
  };
}
