/// <reference types="@cloudflare/vitest-plugin/types" />
import type { Env } from "../../durable-objects/env.ts";

declare global {
  namespace Cloudflare {
    interface Env extends import("../../durable-objects/env.ts").Env {}
  }
}
export type { Env };
