// What creating (or widening) a measurement sets aside: its results' cost for the first day.
import { creditsPerResult, type Definition, specOf } from "../protocol/index.ts";
import type { MeasurementRow } from "./brain-types.ts";
import { DEFAULT_INTERVAL } from "./quotas.ts";

/** Credits a measurement's results cost in its first day (all of a one-off's): what creation sets aside. */
export function firstDayCost(row: Pick<MeasurementRow, "definition" | "is_oneoff" | "interval" | "start_time" | "stop_time" | "probes_requested">): number {
  const perResult = creditsPerResult(specOf(JSON.parse(row.definition) as Definition), row.is_oneoff === 1);
  if (row.is_oneoff === 1) return perResult * row.probes_requested;
  const span = Math.min(86_400, row.stop_time === null ? 86_400 : Math.max(0, row.stop_time - row.start_time));
  return perResult * row.probes_requested * Math.max(1, Math.ceil(span / (row.interval ?? DEFAULT_INTERVAL)));
}
