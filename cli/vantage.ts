#!/usr/bin/env node
// vantage: the operator's command. Enrolls probes by public key, disables and re-enables them, creates API keys,
// makes the edge's signing key pair for a deployment, and builds, signs, publishes and rolls out agent releases.
import { generateKeyPairSync } from "node:crypto";
import { readFileSync, writeFileSync } from "node:fs";
import { parseArgs } from "node:util";
import { type ReleaseManifest, signRelease } from "../protocol/release.ts";

const USAGE = `usage: npx vantage <command> [options]   (or: npm run vantage -- <command> [options])
  edge-keys                                   print a new EDGE_PRIVATE_JWK / EDGE_PUBLIC_JWK pair for wrangler
  release-keys                                print a new release key pair (probes pin the public one)
  build-release --version V --out FILE        build the agent bundle as release V
  sign-release --bundle FILE --version V      sign an agent bundle with RELEASE_PRIVATE_JWK; writes FILE.manifest.json
  publish-release --bundle FILE               upload a signed bundle (with FILE.manifest.json) to the edge
  rollout V --percent P [--max-failures N]    offer release V to P % of the probes (again: widen); the rollout halts
                                              itself after N refusals or rollbacks (default 1)
  rollout-status | rollout-halt               the latest rollout and its probes' reports | stop offering it
  bundles build --type T --hour YYYY-MM-DDTHH build that hour's archive bundle now (what the hourly job does)
  bundles pull [--type T] --from YYYY-MM-DD [--to YYYY-MM-DD] --dir D [--via worker|s3]
               [--s3-endpoint URL --s3-bucket B [--s3-region R]]
                                              download bundles into D (type=/date=/hour=), resumable, checked
                                              against their SHA-256; needs no credential (the S3 store: AWS_*)
  enroll-probe --public-key=K [--country CC] [--asn N] [--prefix P/len] [--lat X --lon Y] [--description D]
               [--owner ACCOUNT]              enroll a probe (its key from \`vantage-probe enroll\`); prints its id;
                                              the owner account earns 15 credits per connected minute
  disable-probe ID | enable-probe ID          refuse or allow a probe's registrations
  create-key --label L [--account A] [--credits N]
                                              create an API key (of account A, or a new account), granting the
                                              account N credits once; prints the key (only its hash is stored)
  grant-credits ACCOUNT --credits N --request-id R
                                              grant an account N credits (once per request id)
options for the edge: --edge URL (or VANTAGE_EDGE, default http://127.0.0.1:8787)
                      --admin-token T (or VANTAGE_ADMIN_TOKEN)`;

async function call(edge: string, token: string, path: string, body?: unknown, init: { method?: string; headers?: Record<string, string>; raw?: Uint8Array } = {}): Promise<Record<string, unknown>> {
  const res = await fetch(new URL(path, edge), {
    method: init.method ?? (body === undefined && !init.raw ? "GET" : "POST"),
    headers: { ...(init.raw ? { "Content-Type": "application/octet-stream" } : { "Content-Type": "application/json" }), Authorization: `Bearer ${token}`, ...init.headers },
    body: init.raw ?? (body === undefined ? undefined : JSON.stringify(body)),
  });
  const json = (await res.json().catch(() => ({}))) as { error?: { detail?: string; errors?: { source: { pointer?: string }; detail: string }[] } } & Record<string, unknown>;
  if (!res.ok) {
    const fields = (json.error?.errors ?? []).map((e) => `  ${e.source.pointer}: ${e.detail}`).join("\n");
    throw new Error(`${res.status}: ${json.error?.detail ?? res.statusText}${fields ? `\n${fields}` : ""}`);
  }
  return json;
}

function number(name: string, v: string | undefined): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isFinite(n)) throw new Error(`--${name} must be a number (got "${v}")`);
  return n;
}

async function main(): Promise<number> {
  const { positionals, values } = parseArgs({
    allowPositionals: true,
    options: {
      edge: { type: "string" }, "admin-token": { type: "string" }, "public-key": { type: "string" }, country: { type: "string" },
      asn: { type: "string" }, prefix: { type: "string" }, lat: { type: "string" }, lon: { type: "string" },
      description: { type: "string" }, label: { type: "string" }, help: { type: "boolean", short: "h" },
      account: { type: "string" }, credits: { type: "string" }, "request-id": { type: "string" }, owner: { type: "string" },
      bundle: { type: "string" }, version: { type: "string" }, out: { type: "string" }, percent: { type: "string" },
      "max-failures": { type: "string" }, type: { type: "string" }, hour: { type: "string" }, from: { type: "string" },
      to: { type: "string" }, dir: { type: "string" }, via: { type: "string" }, "s3-endpoint": { type: "string" },
      "s3-bucket": { type: "string" }, "s3-region": { type: "string" },
    },
  });
  const [command, arg] = positionals;
  if (values.help || !command) { console.log(USAGE); return command ? 0 : 2; }
  if (command === "release-keys") {
    const { privateKey, publicKey } = generateKeyPairSync("ed25519");
    console.log(`RELEASE_PRIVATE_JWK='${JSON.stringify(privateKey.export({ format: "jwk" }))}'`);
    console.log(`RELEASE_PUBLIC_JWK='${JSON.stringify(publicKey.export({ format: "jwk" }))}'`);
    return 0;
  }
  if (command === "sign-release") {
    const jwk = process.env.RELEASE_PRIVATE_JWK;
    if (!values.bundle || !values.version) throw new Error("sign-release needs --bundle FILE and --version V");
    if (!jwk) throw new Error("sign-release needs the release private key in RELEASE_PRIVATE_JWK (from `vantage release-keys`)");
    const manifest = await signRelease(readFileSync(values.bundle), values.version, JSON.parse(jwk) as JsonWebKey);
    writeFileSync(`${values.bundle}.manifest.json`, JSON.stringify(manifest, null, 2) + "\n");
    console.log(`${values.bundle}.manifest.json: ${manifest.version} sha256 ${manifest.sha256}`);
    return 0;
  }
  if (command === "build-release") {
    if (!values.version || !values.out) throw new Error("build-release needs --version V and --out FILE");
    const { buildProbe } = await import("../probe-agent/build.ts");
    console.log(await buildProbe({ version: values.version, outfile: values.out }));
    return 0;
  }
  if (command === "edge-keys") {
    const { privateKey, publicKey } = generateKeyPairSync("ed25519");
    console.log(`EDGE_PRIVATE_JWK='${JSON.stringify(privateKey.export({ format: "jwk" }))}'`);
    console.log(`EDGE_PUBLIC_JWK='${JSON.stringify(publicKey.export({ format: "jwk" }))}'`);
    return 0;
  }
  const edge = values.edge ?? process.env.VANTAGE_EDGE ?? "http://127.0.0.1:8787";
  if (command === "bundles" && arg === "pull") {
    if (!values.from || !values.dir) throw new Error("bundles pull needs --from YYYY-MM-DD and --dir D");
    if (values.via !== undefined && values.via !== "worker" && values.via !== "s3") throw new Error('--via must be "worker" or "s3"');
    if (values["s3-endpoint"] && !values["s3-bucket"]) throw new Error("--s3-endpoint needs --s3-bucket");
    const { pullBundles } = await import("./bundles.ts");
    const tty = process.stderr.isTTY;
    const summary = await pullBundles({
      edge, dir: values.dir, type: values.type, from: values.from, to: values.to ?? values.from, via: values.via as "worker" | "s3" | undefined,
      s3: values["s3-endpoint"] ? { endpoint: values["s3-endpoint"], bucket: values["s3-bucket"]!, region: values["s3-region"] ?? "auto" } : undefined,
      progress: tty ? (line) => process.stderr.write(`\r${line}`) : undefined,
    });
    if (tty) process.stderr.write("\n");
    console.log(`${summary.bundles} bundle(s): ${summary.pulled} pulled (${summary.bytes} bytes), ${summary.upToDate} already up to date, all checked against their SHA-256`);
    return 0;
  }
  const token = values["admin-token"] ?? process.env.VANTAGE_ADMIN_TOKEN;
  if (!token) throw new Error("the operator credential is missing: pass --admin-token or set VANTAGE_ADMIN_TOKEN");
  switch (command) {
    case "enroll-probe": {
      if (!values["public-key"]) throw new Error("enroll-probe needs --public-key (print it on the probe with `vantage-probe enroll`)");
      const probe = await call(edge, token, "/admin/probes", {
        public_key: values["public-key"], description: values.description, country_code: values.country,
        asn_v4: number("asn", values.asn), prefix_v4: values.prefix, latitude: number("lat", values.lat), longitude: number("lon", values.lon),
        owner: values.owner,
      });
      console.log(probe.id);
      return 0;
    }
    case "disable-probe":
    case "enable-probe": {
      if (!arg || !/^\d+$/.test(arg)) throw new Error(`${command} needs a probe id`);
      await call(edge, token, `/admin/probes/${arg}/${command === "disable-probe" ? "disable" : "enable"}`, {});
      console.log(`probe ${arg} ${command === "disable-probe" ? "disabled" : "enabled"}`);
      return 0;
    }
    case "create-key": {
      if (!values.label) throw new Error("create-key needs --label");
      console.log((await call(edge, token, "/admin/keys", { label: values.label, account: values.account, credits: number("credits", values.credits) })).key);
      return 0;
    }
    case "publish-release": {
      if (!values.bundle) throw new Error("publish-release needs --bundle FILE (signed: FILE.manifest.json next to it)");
      const manifest = JSON.parse(readFileSync(`${values.bundle}.manifest.json`, "utf8")) as ReleaseManifest;
      const out = await call(edge, token, `/admin/releases/${manifest.version}`, undefined, {
        method: "PUT", raw: readFileSync(values.bundle),
        headers: { "Vantage-Release-Sha256": manifest.sha256, "Vantage-Release-Size": String(manifest.size), "Vantage-Release-Signature": manifest.signature },
      });
      console.log(`release ${String(out.version)} published (${String(out.bytes)} bytes)`);
      return 0;
    }
    case "rollout": {
      if (!arg || !values.percent) throw new Error("rollout needs a version and --percent P");
      const out = await call(edge, token, "/admin/rollouts", { version: arg, percent: number("percent", values.percent), max_failures: number("max-failures", values["max-failures"]) });
      console.log(JSON.stringify(out, null, 2));
      return 0;
    }
    case "bundles": {
      if (arg !== "build" || !values.type || !values.hour) throw new Error("bundles build needs --type T and --hour YYYY-MM-DDTHH (or: bundles pull)");
      const out = await call(edge, token, "/admin/bundles/build", { type: values.type, hour: values.hour });
      console.log(out.built ? `${String(out.name)}: ${String(out.count)} results, ${String(out.bytes)} bytes, sha256 ${String(out.sha256)}` : String(out.detail));
      return 0;
    }
    case "rollout-status":
    case "rollout-halt": {
      console.log(JSON.stringify(await call(edge, token, command === "rollout-halt" ? "/admin/rollouts/halt" : "/admin/rollouts", command === "rollout-halt" ? {} : undefined), null, 2));
      return 0;
    }
    case "grant-credits": {
      if (!arg || !values.credits || !values["request-id"]) throw new Error("grant-credits needs ACCOUNT, --credits N and --request-id R");
      const out = await call(edge, token, `/admin/accounts/${encodeURIComponent(arg)}/credits`, { credits: number("credits", values.credits), request_id: values["request-id"] });
      console.log(`account ${arg}: balance ${String(out.balance)}`);
      return 0;
    }
  }
  console.error(`unknown command "${command}"\n${USAGE}`);
  return 2;
}

main().then((code) => process.exit(code), (e: unknown) => { console.error(`vantage: ${(e as Error).message}`); process.exit(1); });
