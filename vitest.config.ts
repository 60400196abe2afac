// Two projects: `edge` runs Worker and Durable Object code inside workerd (@cloudflare/vitest-plugin, wrangler.toml
// bindings); `node` runs the agent, the local system end to end (wrangler dev + real agent processes) and durability.
import { generateKeyPairSync } from "node:crypto";
import { cloudflareTest } from "@cloudflare/vitest-plugin";
import { defineConfig } from "vitest/config";

const { privateKey, publicKey } = generateKeyPairSync("ed25519");

export default defineConfig({
  test: {
    projects: [
      {
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
              },
            },
          }),
        ],
        test: { name: "edge", include: ["test/edge/**/*.test.ts"] },
      },
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
