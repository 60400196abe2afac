// Archive bundles: one per result type per hour, named like RIPE Atlas's dumps, laid out Hive-style next to the
// results so batch engines read them in place:
//
//   bundles/type=ping/date=2026-11-26/hour=06/ping-2026-11-26T0600.jsonl.gz            one Atlas result per line
//   bundles/type=ping/date=2026-11-26/hour=06/ping-2026-11-26T0600.manifest.json       count, bytes, SHA-256, first/last
//   bundles/type=ping/date=2026-11-26/index.json                                       the day's manifests
//
// Shared by the edge (which builds and serves them) and the `vantage bundles` CLI.
import { MEASUREMENT_TYPES } from "../protocol/atlas.ts";

export type BundleManifest = {
  name: string; type: string; date: string; hour: string; key: string;
  /** Results in the bundle, its compressed size, and the SHA-256 (hex) of its bytes. */
  count: number; bytes: number; sha256: string;
  first_timestamp: number; last_timestamp: number;
};

/** The measurement types and the appliances' data sources (public records only, as for measurements). */
export const BUNDLE_TYPES = [...MEASUREMENT_TYPES, "dnsstats", "traffic", "cdns"] as const;

/** An hour as `YYYY-MM-DDTHH` (UTC), the way the CLI and the API name it. */
export const HOUR = /^(\d{4}-\d{2}-\d{2})T(\d{2})$/;

export function parseHour(hour: string): { date: string; hour: string; start: number } | null {
  const m = HOUR.exec(hour);
  if (!m) return null;
  const start = Date.parse(`${m[1]}T${m[2]}:00:00Z`) / 1000;
  if (!Number.isFinite(start) || new Date(start * 1000).toISOString().slice(0, 13) !== hour) return null;
  return { date: m[1]!, hour: m[2]!, start };
}

export function bundleName(type: string, date: string, hour: string): string {
  return `${type}-${date}T${hour}00`;
}

export function bundlePrefix(type: string, date: string, hour: string): string {
  return `bundles/type=${type}/date=${date}/hour=${hour}/`;
}

export function bundleKey(type: string, date: string, hour: string): string {
  return `${bundlePrefix(type, date, hour)}${bundleName(type, date, hour)}.jsonl.gz`;
}

export function manifestKey(type: string, date: string, hour: string): string {
  return `${bundlePrefix(type, date, hour)}${bundleName(type, date, hour)}.manifest.json`;
}

export function dayIndexKey(type: string, date: string): string {
  return `bundles/type=${type}/date=${date}/index.json`;
}

/** The bundle a name (`ping-2026-11-26T0600`) stands for, or null. */
export function parseBundleName(name: string): { type: string; date: string; hour: string } | null {
  const m = /^([a-z]+)-(\d{4}-\d{2}-\d{2})T(\d{2})00$/.exec(name);
  if (!m || !(BUNDLE_TYPES as readonly string[]).includes(m[1]!) || !parseHour(`${m[2]}T${m[3]}`)) return null;
  return { type: m[1]!, date: m[2]!, hour: m[3]! };
}

/** The dates (YYYY-MM-DD) from `from` to `to`, inclusive. */
export function datesBetween(from: string, to: string): string[] {
  const out: string[] = [];
  for (let t = Date.parse(`${from}T00:00:00Z`); t <= Date.parse(`${to}T00:00:00Z`); t += 86_400_000) out.push(new Date(t).toISOString().slice(0, 10));
  return out;
}
