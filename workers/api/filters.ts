// Atlas's list filters, ordering and field selection, shared by /measurements/ and /probes/. A parameter a list
// does not know is refused with a 400 naming it: answering everything to a filter that was ignored is a wrong answer.
import { parameterError } from "./errors.ts";

/** Parameters every list takes (cousteau and ripe-atlas send some of them on every request). */
const GENERIC = ["page", "page_size", "format", "key", "fields", "optional_fields", "sort"];

/** Refuses any parameter not in `known` (nor generic), naming it and listing what the list does take. */
export function onlyKnownParams(url: URL, known: readonly string[]): void {
  for (const name of new Set(url.searchParams.keys())) {
    if (!GENERIC.includes(name) && !known.includes(name)) {
      throw parameterError(name, `Not a filter of this list; it takes ${[...known].sort().join(", ")} (and ${GENERIC.join(", ")}).`);
    }
  }
}

/** Atlas's comparison suffixes (`start_time__gte=…`) and the SQL operator each means. */
const COMPARISONS = { "": "=", __gt: ">", __gte: ">=", __lt: "<", __lte: "<=" } as const;
export type Bound<F extends string = string> = { field: F; op: (typeof COMPARISONS)[keyof typeof COMPARISONS]; value: number };

/** The parameter names `field`, `field__gt`, … `field__lte` of each field. */
export const comparisonParamNames = (fields: readonly string[]) => fields.flatMap((f) => Object.keys(COMPARISONS).map((op) => f + op));

/** Every `field` / `field__gt` … parameter given, as bounds; `parse` gives a value or null for one it refuses. */
function bounds<F extends string>(url: URL, fields: readonly F[], parse: (raw: string, field: F) => number | null, refusal: (field: F) => string): Bound<F>[] {
  const out: Bound<F>[] = [];
  for (const field of fields) {
    for (const [suffix, op] of Object.entries(COMPARISONS)) {
      const raw = url.searchParams.get(field + suffix);
      if (raw === null || raw === "") continue;
      const value = parse(raw, field);
      if (value === null) throw parameterError(field + suffix, refusal(field));
      out.push({ field, op, value });
    }
  }
  return out;
}

/** `start_time__gte=…` and the like (unix seconds or ISO-8601). */
export function timeBounds<F extends string>(url: URL, fields: readonly F[]): Bound<F>[] {
  return bounds(url, fields, (raw) => {
    const v = /^\d+$/.test(raw) ? Number(raw) : Math.floor(Date.parse(raw) / 1000);
    return Number.isSafeInteger(v) ? v : null;
  }, () => "Enter a unix timestamp or an ISO-8601 date.");
}

/** `latitude__gt=…`, `longitude__lte=…` and the like (degrees). */
export function locationBounds(url: URL): Bound<"latitude" | "longitude">[] {
  return bounds(url, ["latitude", "longitude"] as const, (raw, field) => {
    const v = Number(raw);
    return Number.isFinite(v) && Math.abs(v) <= (field === "latitude" ? 90 : 180) ? v : null;
  }, (field) => `Enter degrees of ${field}.`);
}

/** `name=a,b` as a list of non-empty strings (undefined when absent). */
export function listParam(url: URL, name: string): string[] | undefined {
  const v = url.searchParams.get(name);
  if (v === null || v === "") return undefined;
  return v.split(",").map((s) => s.trim()).filter(Boolean);
}

/** `sort=field` or `sort=-field` among `allowed` (default: `fallback`). */
export function sortParam(url: URL, allowed: readonly string[], fallback: string): { field: string; desc: boolean } {
  const raw = url.searchParams.get("sort") || fallback;
  const field = raw.replace(/^-/, "");
  if (!allowed.includes(field)) throw parameterError("sort", `Sort by one of ${allowed.join(", ")} (prefix - for descending).`);
  return { field, desc: raw.startsWith("-") };
}

/**
 * Atlas's field selection: `fields=a,b` answers only those fields of each object (and `id`); `optional_fields` names
 * fields Atlas leaves out by default, which Vantage's objects always carry. A name the object does not have is simply
 * absent from the answer, as on Atlas (RIPE's `ripe-atlas measurement-search --field url` asks for one).
 */
export function selectFields<T extends Record<string, unknown>>(url: URL, objects: T[]): Record<string, unknown>[] {
  const fields = listParam(url, "fields");
  if (!fields) return objects;
  const keep = new Set(["id", ...fields]);
  return objects.map((o) => Object.fromEntries(Object.entries(o).filter(([k]) => keep.has(k))));
}

/** A yes/no parameter (`true`/`false`, as Atlas takes them; also 1/0). */
export function boolParam(url: URL, name: string): boolean | undefined {
  const v = url.searchParams.get(name);
  if (v === null || v === "") return undefined;
  if (["true", "1", "True"].includes(v)) return true;
  if (["false", "0", "False"].includes(v)) return false;
  throw parameterError(name, "Enter true or false.");
}

