// This agent's release version: stamped into the bundle by probe-agent/build.ts; from the sources, the package's.
import { createRequire } from "node:module";

declare const __VANTAGE_AGENT_VERSION__: string | undefined;

export const AGENT_VERSION: string = typeof __VANTAGE_AGENT_VERSION__ === "string"
  ? __VANTAGE_AGENT_VERSION__
  : (createRequire(import.meta.url)("../package.json") as { version: string }).version;
