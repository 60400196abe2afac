/// <reference types="@cloudflare/vitest-plugin/types" />
// Type of `exports` from "cloudflare:workers" in the workerd tests (the edge's Worker entry). The bindings are
// typed through the harness's `env`.
declare namespace Cloudflare {
  interface GlobalProps {
    mainModule: typeof import("../../workers/index.ts");
    durableNamespaces: "Brain" | "Controller" | "Registry" | "Ledger" | "StreamHub";
  }
}
