// SQL migrations for SQLite-backed Durable Objects, kept in a table because PRAGMA user_version is unsupported.
// Run from the constructor inside blockConcurrencyWhile; each migration runs once, in order, atomically.
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

export type Row = Record<string, SqlStorageValue>;
