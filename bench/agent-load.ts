// Load for `npm run bench:agent`: `rounds` rounds of `concurrency` concurrent ping measurements (each `packets`
// echo requests `interval` ms apart) to 127.0.0.1…127.0.0.N through the agent's own measurement code. Prints JSON.
import { runMeasurement } from "../probe-agent/measure/index.ts";
import type { PingResult } from "../protocol/index.ts";

const [rounds, concurrency, packets, interval] = process.argv.slice(2).map(Number) as [number, number, number, number];
const signal = new AbortController().signal;
let results = 0, sent = 0, received = 0;
const rtts: number[] = [];
const t0 = performance.now();
for (let r = 0; r < rounds; r++) {
  const batch = await Promise.all(Array.from({ length: concurrency }, (_, i) => runMeasurement(
    { type: "ping", af: 4, target: `127.0.0.${(i % 254) + 1}`, resolve_on_probe: false, packets, size: 48, packet_interval: interval },
    { msmId: 1, probeId: 1, step: null, lts: 0, allowPrivate: true, signal },
  ) as Promise<PingResult>));
  for (const res of batch) {
    results++;
    sent += res.sent;
    received += res.rcvd;
    for (const x of res.result) if ("rtt" in x) rtts.push(x.rtt);
  }
}
const wall = (performance.now() - t0) / 1000;
console.log(JSON.stringify({ results, sent, received, wall, rtts }));
