// SQLite-backed Durable Objects: migrations kept in a table (PRAGMA user_version is unsupported), run once, in
// order, atomically, before any event; and one typed query helper.
import { DurableObject } from "cloudflare:workers";

export function migrate(storage: DurableObjectStorage, migrations: readonly string[]): void {
  storage.sql.exec("CREATE TABLE IF NOT EXISTS _migrations (id INTEGER PRIMARY KEY, applied_at INTEGER NOT NULL)");
  const done = storage.sql.exec<{ n: number }>("SELECT COUNT(*) AS n FROM _migrations").one().n;
  for (let i = done; i < migrations.length; i++) {
    storage.transactionSync(() => {
      storage.sql.exec(migrations[i]!);
      storage.sql.exec("INSERT INTO _migrations (id, applied_at) VALUES (?, ?)", i + 1, Date.now());
    });
  }
}

export abstract class SqlDurableObject<E> extends DurableObject<E> {
  constructor(ctx: DurableObjectState, env: E, migrations: readonly string[]) {
    super(ctx, env);
    ctx.blockConcurrencyWhile(async () => migrate(ctx.storage, migrations));
  }

  /**
   * Runs a statement and returns all rows (synchronous: consume before any await). An instance property, not a
   * method, so that RPC never exposes it to callers of the stub.
   */
  protected readonly sql = <T extends Record<string, SqlStorageValue>>(query: string, ...bindings: unknown[]): T[] =>
    this.ctx.storage.sql.exec<T>(query, ...(bindings as SqlStorageValue[])).toArray();
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

  toString(): string {
    return this.parts.length ? `WHERE ${this.parts.join(" AND ")}` : "";
  }
}
