// The probe-agent directory, whether the agent runs from its sources or from its bundle in probe-agent/dist/
// (build.ts): files the agent loads at run time (the native addon, the classifier) are found from here. A signed
// release (probe-agent/release.ts) runs from the state directory and is told the installed agent's directory in
// VANTAGE_AGENT_DIR: a release replaces the agent's JavaScript, the native addon is the installed package's.
import { fileURLToPath } from "node:url";

const here = new URL(".", import.meta.url);
export const AGENT_DIR = process.env.VANTAGE_AGENT_DIR ?? fileURLToPath(here.pathname.endsWith("/dist/") ? new URL("..", here) : here);
