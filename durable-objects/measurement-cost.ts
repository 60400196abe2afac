// What creating (or widening) a measurement sets aside: its results' cost for the first day. The brain reserves it;
// the API's price (POST /api/v2/measurements/cost/) shows it before anything is created, from the same functions.
import { type CreateMeasurements, creditsPerResult, type Definition, specOf, toUnix } from "../protocol/index.ts";
import type { MeasurementRow } from "./brain-types.ts";
import { DEFAULT_INTERVAL } from "./quotas.ts";

type Costed = Pick<MeasurementRow, "definition" | "is_oneoff" | "interval" | "start_time" | "stop_time" | "probes_requested">;

/** A definition's schedule as its measurement row will have it: times in unix seconds, the interval and spread. */
export function scheduleOf(req: CreateMeasurements, def: Definition, now: number): {
  isOneoff: boolean; start: number; stop: number | null; interval: number | null; spread: number | null; requested: number;
} {
  const isOneoff = def.is_oneoff ?? req.is_oneoff ?? false;
  const startAt = def.start_time ?? req.start_time;
  const stopAt = def.stop_time ?? req.stop_time;
  const interval = isOneoff ? null : def.interval ?? DEFAULT_INTERVAL;
  return {
    isOneoff,
    start: startAt === undefined ? now : toUnix(startAt),
    stop: isOneoff || stopAt === undefined ? null : toUnix(stopAt),
    interval,
    spread: interval === null ? null : def.spread ?? Math.min(Math.floor(interval / 2), 400),
    requested: req.probes.reduce((n, s) => n + s.requested, 0),
  };
}

/** Results a measurement delivers in its first day if every requested probe takes part (all of a one-off's). */
export function firstDayResults(row: Omit<Costed, "definition">): number {
  if (row.is_oneoff === 1) return row.probes_requested;
  const span = Math.min(86_400, row.stop_time === null ? 86_400 : Math.max(0, row.stop_time - row.start_time));
  return row.probes_requested * Math.max(1, Math.ceil(span / (row.interval ?? DEFAULT_INTERVAL)));
}

/** Credits a measurement's results cost in its first day (all of a one-off's): what creation sets aside. */
export function firstDayCost(row: Costed): number {
  return creditsPerResult(specOf(JSON.parse(row.definition) as Definition), row.is_oneoff === 1) * firstDayResults(row);
}

/** Each definition's price, as creation would reserve it. */
export function requestCosts(req: CreateMeasurements, now: number): { credits_per_result: number; results_first_day: number; credits: number }[] {
  return req.definitions.map((def) => {
    const s = scheduleOf(req, def, now);
    const row = { is_oneoff: s.isOneoff ? 1 : 0, interval: s.interval, start_time: Math.max(s.start, now), stop_time: s.stop, probes_requested: s.requested };
    const perResult = creditsPerResult(specOf(def), s.isOneoff);
    const results = firstDayResults(row);
    return { credits_per_result: perResult, results_first_day: results, credits: perResult * results };
  });
}
