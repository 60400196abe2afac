// SQLite-backed Durable Objects: migrations kept in a table (PRAGMA user_version is unsupported), run once, in
// order, atomically, before any event; and one typed query helper.
import { DurableObject } from "cloudflare:workers";

/** A typed query: all rows of one statement, synchronously (what `SqlDurableObject.sql` is, handed to helpers). */
export type Sql = <T extends Record<string, SqlStorageValue>>(query: string, ...bindings: unknown[]) => T[];

export function migrate(storage: DurableObjectStorage, migrations: readonly string[]): void {
  storage.sql.exec("CREATE TABLE IF NOT EXISTS _migrations (id INTEGER PRIMARY KEY, applied_at INTEGER NOT NULL)");
  storage.sql.exec("CREATE TABLE IF NOT EXISTS _usage (name TEXT PRIMARY KEY, value INTEGER NOT NULL)");
  const done = storage.sql.exec<{ n: number }>("SELECT COUNT(*) AS n FROM _migrations").one().n;
  for (let i = done; i < migrations.length; i++) {
    storage.transactionSync(() => {
      storage.sql.exec(migrations[i]!);
      storage.sql.exec("INSERT INTO _migrations (id, applied_at) VALUES (?, ?)", i + 1, Date.now());
    });
  }
}

/**
 * What an object has used, in the units Cloudflare bills (for the cost figures of `npm run bench`): SQLite rows
 * written, incoming requests (counted RPC calls, alarms) and WebSocket messages (billed 20:1). Counted in memory and
 * added to the `_usage` table when saved (at each flush, and when read), so hibernation or eviction loses at most
 * what came since the last save; those rows themselves are not counted.
 */
export type Usage = { rows_written: number; requests: number; ws_messages: number };

export abstract class SqlDurableObject<E> extends DurableObject<E> {
  protected used: Usage = { rows_written: 0, requests: 0, ws_messages: 0 };

  constructor(ctx: DurableObjectState, env: E, migrations: readonly string[]) {
    super(ctx, env);
    ctx.blockConcurrencyWhile(async () => migrate(ctx.storage, migrations));
  }

  /**
   * Runs a statement and returns all rows (synchronous: consume before any await). An instance property, not a
   * method, so that RPC never exposes it to callers of the stub.
   */
  protected readonly sql = <T extends Record<string, SqlStorageValue>>(query: string, ...bindings: unknown[]): T[] => {
    const cursor = this.ctx.storage.sql.exec<T>(query, ...(bindings as SqlStorageValue[]));
    const rows = cursor.toArray();
    this.used.rows_written += cursor.rowsWritten;
    return rows;
  };

  /** Everything used so far (saved and in memory). */
  usage(): Usage {
    this.saveUsage();
    const saved = this.ctx.storage.sql.exec<{ name: keyof Usage; value: number }>("SELECT name, value FROM _usage").toArray();
    const out: Usage = { rows_written: 0, requests: 0, ws_messages: 0 };
    for (const r of saved) out[r.name] = r.value;
    return out;
  }

  protected saveUsage(): void {
    for (const [name, value] of Object.entries(this.used)) {
      if (value > 0) this.ctx.storage.sql.exec("INSERT INTO _usage (name, value) VALUES (?, ?) ON CONFLICT (name) DO UPDATE SET value = value + excluded.value", name, value);
    }
    this.used = { rows_written: 0, requests: 0, ws_messages: 0 };
  }
}

/** A WHERE clause built from optional filters: a filter left undefined adds nothing. */
export class Where {
  private readonly parts: string[] = [];
  readonly binds: unknown[] = [];

  eq(column: string, value: SqlStorageValue | undefined): this {
    if (value !== undefined) {
      this.parts.push(`${column} = ?`);
      this.binds.push(value);
    }
    return this;
  }

  in(column: string, values: readonly SqlStorageValue[] | undefined): this {
    if (values) {
      this.parts.push(values.length ? `${column} IN (${values.map(() => "?").join(",")})` : "0");
      this.binds.push(...values);
    }
    return this;
  }

  /**
   * `column op ?`, for Atlas's `__gt`-style filters. The operator must be one of the five comparisons (a caller's
   * mistake throws, it never reaches SQL); the column is the caller's own text, never a request's.
   */
  compare(column: string, op: string, value: SqlStorageValue): this {
    if (!["=", ">", ">=", "<", "<="].includes(op)) throw new Error(`not a comparison: ${op}`);
    this.parts.push(`${column} ${op} ?`);
    this.binds.push(value);
    return this;
  }

  /** Any other condition, e.g. an OR the helpers above do not make. */
  raw(condition: string, ...binds: unknown[]): this {
    this.parts.push(`(${condition})`);
    this.binds.push(...binds);
    return this;
  }

  toString(): string {
    return this.parts.length ? `WHERE ${this.parts.join(" AND ")}` : "";
  }
}
