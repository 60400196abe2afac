// The probe-agent directory, whether the agent runs from its sources or from its bundle in probe-agent/dist/
// (build.ts): files the agent loads at run time (the native addon, the classifier) are found from here.
import { fileURLToPath } from "node:url";

const here = new URL(".", import.meta.url);
export const AGENT_DIR = fileURLToPath(here.pathname.endsWith("/dist/") ? new URL("..", here) : here);
