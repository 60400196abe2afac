// Two projects: `edge` runs Worker and Durable Object code inside workerd (@cloudflare/vitest-plugin, wrangler.toml
// bindings); `node` runs the agent, the local system end to end (wrangler dev + real agent processes) and durability.
import { generateKeyPairSync } from "node:crypto";
import { cloudflareTest } from "@cloudflare/vitest-plugin";
import { defineConfig } from "vitest/config";

const { privateKey, publicKey } = generateKeyPairSync("ed25519");

function edge(name: string, include: string[], vars: Record<string, string>, exclude: string[] = []) {
  return {
    plugins: [
      cloudflareTest({
        wrangler: { configPath: "./wrangler.toml" },
        miniflare: {
          bindings: {
            EDGE_PRIVATE_JWK: JSON.stringify(privateKey.export({ format: "jwk" })),
            EDGE_PUBLIC_JWK: JSON.stringify(publicKey.export({ format: "jwk" })),
            ADMIN_TOKEN: "test-admin-token",
            ALLOW_PRIVATE_TARGETS: "true",
            FLUSH_RESULTS: "1000",
            FLUSH_INTERVAL_MS: "60000",
            // Small enough for test/edge/stream.test.ts to exceed with a few hundred results.
            STREAM_MAX_BYTES_PER_MINUTE: "100000",
            ...vars,
          },
        },
      }),
    ],
    // Several edge tests store and read back thousands of results in workerd (3–5 s on an idle 2-core machine): the
    // default 5 s failed one beside a CPU hog. CI's machine may be busy; a hung test still fails, at 30 s.
    test: { name, include, exclude, testTimeout: 30_000 },
  };
}

export default defineConfig({
  test: {
    projects: [
      // The attack suite, against the edge as deployed: private targets refused, what controllers accept from probes
      // at its defaults (durable-objects/admission.ts) — except a per-probe allowance and a creation rate small
      // enough for a test to exceed, and how many requests the API fuzzer sends (`npm run fuzz:api` sends 100,000).
      edge("edge-strict", ["test/edge/attacks/**/*.test.ts"], {
        ALLOW_PRIVATE_TARGETS: "false", PROBE_RESULTS_PER_MINUTE: "200", QUOTA_CREATES_PER_MINUTE: "10",
        FUZZ_REQUESTS: process.env.FUZZ_REQUESTS ?? "3000",
      }),
      // Tests of storage, queries and bundles fabricate results from hours and days ago, many per probe, which a
      // deployed controller refuses (a probe cannot report runs it could not have made): here the clock-skew and
      // extra-runs tolerances are wide. Everything else is as deployed.
      // A resolver check as an operator configures one (test/edge/system-tags.test.ts).
      edge("edge", ["test/edge/**/*.test.ts"], {
        RESULT_CLOCK_SKEW_S: String(30 * 86_400), RESULT_EXTRA_RUNS: "1000000",
        RESOLVER_CHECK: JSON.stringify({ name: "check.vantage.test", a: ["192.0.2.53"], aaaa: ["2001:db8:0:0::53"] }),
      }, ["test/edge/attacks/**"]),
      {
        test: {
          name: "node",
          include: ["test/node/**/*.test.ts"],
          environment: "node",
          globalSetup: ["test/node/global-setup.ts"],
          testTimeout: 180_000,
          hookTimeout: 180_000,
          fileParallelism: false,
        },
      },
    ],
  },
});
