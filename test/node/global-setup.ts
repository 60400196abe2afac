// Builds the probe agent's bundle once per test run from the current sources: the tests run the agent as it ships.
import { buildProbe } from "../../probe-agent/build.ts";

export async function setup(): Promise<void> {
  await buildProbe();
}
