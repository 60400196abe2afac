// The measurement list's query (GET /api/v2/measurements/ and /my/): Atlas's filters, ordering and visibility as
// one SQL statement over the brain's measurements table. Filter values are bound; field names and operators come
// from fixed lists (workers/api/filters.ts), never from the request's text.
import type { MeasurementFilter, MeasurementRow } from "./brain-types.ts";
import { type Sql, Where } from "./sql.ts";

export function listMeasurements(sql: Sql, f: MeasurementFilter, offset: number, limit: number): { count: number; rows: MeasurementRow[] } {
  const bool = (b: boolean | undefined) => (b === undefined ? undefined : b ? 1 : 0);
  const where = new Where().in("id", f.ids).in("status_id", f.status).eq("type", f.type).eq("is_oneoff", bool(f.is_oneoff))
    .eq("is_public", bool(f.is_public)).eq("owner", f.owner).eq("target", f.target).eq("json_extract(definition, '$.af')", f.af)
    .eq("json_extract(definition, '$.description')", f.description).eq("group_id", f.group_id);
  // LIKE with the user's text escaped: % and _ in it are literal.
  const like = (s: string) => s.replace(/[\\%_]/g, (c) => `\\${c}`);
  if (f.target_contains) where.raw("target LIKE ? ESCAPE '\\'", `%${like(f.target_contains)}%`);
  if (f.target_startswith) where.raw("target LIKE ? ESCAPE '\\'", `${like(f.target_startswith)}%`);
  if (f.description_contains) where.raw("json_extract(definition, '$.description') LIKE ? ESCAPE '\\'", `%${like(f.description_contains)}%`);
  if (f.description_startswith) where.raw("json_extract(definition, '$.description') LIKE ? ESCAPE '\\'", `${like(f.description_startswith)}%`);
  if (f.search) where.raw("target LIKE ? ESCAPE '\\' OR json_extract(definition, '$.description') LIKE ? ESCAPE '\\'", `%${like(f.search)}%`, `%${like(f.search)}%`);
  if (f.probe_id !== undefined) where.raw("EXISTS (SELECT 1 FROM json_each(participants) WHERE json_extract(value, '$.probe_id') = ?)", f.probe_id);
  for (const tag of f.tags ?? []) where.raw("EXISTS (SELECT 1 FROM json_each(json_extract(definition, '$.tags')) WHERE value = ?)", tag);
  // Columns come from this fixed map, never from the request's text (Where.compare checks the operator).
  const columns: Record<string, string> = { start_time: "start_time", stop_time: "stop_time", creation_time: "creation_time", id: "id" };
  for (const t of f.times ?? []) {
    if (!columns[t.field]) throw new Error(`not a time filter: ${t.field}`);
    where.compare(columns[t.field]!, t.op, t.value);
  }
  if (f.visible_to !== undefined) where.raw("is_public = 1 OR owner = ?", f.visible_to);
  const order = f.sort && columns[f.sort.field] ? `${columns[f.sort.field]} ${f.sort.desc ? "DESC" : "ASC"}, id DESC` : "id DESC";
  const [clause, binds] = [String(where), where.binds];
  const count = sql<{ n: number }>(`SELECT COUNT(*) AS n FROM measurements ${clause}`, ...binds)[0]!.n;
  const rows = sql<MeasurementRow>(`SELECT * FROM measurements ${clause} ORDER BY ${order} LIMIT ? OFFSET ?`, ...binds, limit, offset);
  return { count, rows };
}
