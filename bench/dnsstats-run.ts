// The collector over one capture file, for bench/dnsstats.ts to time in V8's lite mode (the running agent's flags):
// `node … dnsstats-run.mjs PCAP OUTDIR` (bundled first: lite mode has no WebAssembly, so no TypeScript stripping).
import { collectFile } from "../probe-agent/dnsstats/index.ts";

const [pcap, out] = process.argv.slice(2);
console.log(JSON.stringify(await collectFile(pcap!, out!, {}, "bench")));
