// `npm start`: the whole system on this machine — the edge on http://127.0.0.1:8787 and https://127.0.0.1:8443,
// and three probe agents enrolled in three countries. State lives in .vantage/ and survives restarts.
import { randomUUID } from "node:crypto";
import { join } from "node:path";
import { buildProbe } from "../probe-agent/build.ts";
import { LOCAL_SITES, releaseKeys, ROOT, startLocalSystem } from "./local.ts";

const state = join(ROOT, ".vantage");
const givenKey = process.env.VANTAGE_API_KEY;
await buildProbe();
const system = await startLocalSystem({
  stateDir: state, port: Number(process.env.VANTAGE_PORT ?? 8787), httpsPort: Number(process.env.VANTAGE_HTTPS_PORT ?? 8443),
  apiKey: givenKey ?? randomUUID(),
});
const { edge, front, key, probes } = system;

console.log(`
Vantage is running locally.
  edge (HTTP)   ${edge.url}
  web console   ${edge.url}/   (the probe map; enter the API key below in its header for your account)
  edge (HTTPS)  ${front.url}   (self-signed: curl -k, or point your client at ${join(state, "tls-cert.pem")})
  probes        ${probes.map((p, i) => `${p.id} (${LOCAL_SITES[i]!.country_code}, AS${LOCAL_SITES[i]!.asn_v4})`).join(", ")}
  API key       ${key}${givenKey ? "   (from VANTAGE_API_KEY)" : ""}

Try:
  curl -s -X POST ${edge.url}/api/v2/measurements/ -H 'Authorization: Key ${key}' -H 'Content-Type: application/json' \\
    -d '{"definitions":[{"type":"ping","af":4,"target":"127.0.0.1","description":"first ping"}],
         "probes":[{"type":"area","value":"WW","requested":3}],"is_oneoff":true}'
  curl -s ${edge.url}/api/v2/measurements/<id>/results/
  curl -s ${edge.url}/api/v2/credits/ -H 'Authorization: Key ${key}'   (1,000,000 credits to start; the probes earn more)

Roll out an agent release to the probes (they pin the release key in ${releaseKeys(state).path}):
  export VANTAGE_EDGE=${edge.url} VANTAGE_ADMIN_TOKEN=${edge.secrets.ADMIN_TOKEN}
  export RELEASE_PRIVATE_JWK="$(node -p "require('${releaseKeys(state).path}').RELEASE_PRIVATE_JWK")"
  npm run vantage -- build-release --version 0.2.0 --out /tmp/vantage-probe-0.2.0.mjs
  npm run vantage -- sign-release --bundle /tmp/vantage-probe-0.2.0.mjs --version 0.2.0
  npm run vantage -- publish-release --bundle /tmp/vantage-probe-0.2.0.mjs && npm run vantage -- rollout 0.2.0 --percent 100
Ctrl-C stops everything.`);

let stopping = false;
async function shutdown(code: number): Promise<void> {
  if (stopping) return;
  stopping = true;
  await system.stop();
  process.exit(code);
}
process.on("SIGINT", () => void shutdown(0));
process.on("SIGTERM", () => void shutdown(0));
edge.process.on("exit", (code) => {
  if (!stopping) { console.error(`the edge exited (${code}):\n${edge.output().slice(-3000)}`); void shutdown(1); }
});
// Agents that exit are started again by startProbe, as a service manager would, and say so on stderr.
