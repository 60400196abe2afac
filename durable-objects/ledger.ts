// The credit ledger: one Durable Object per account, holding its balance, the credits reserved for measurements it
// created, and an append-only journal of income and expense items.
//
// Invariants, kept by doing every change in one SQLite transaction inside the object (which runs one call at a time):
// - balance = Σ income − Σ expense, exactly; the balance never goes below zero, and never below what is reserved
//   for measurements (spending draws on the reservation it belongs to, or on what is free);
// - every call that changes money carries a request id and is idempotent: the same id again returns the first
//   outcome and changes nothing (retries after timeouts, restarts, redelivered charges);
// - a request id is bound to what it does (operation, entry type, amount, measurement, counterparty): the same id
//   with any of those changed is refused as a conflict, never answered with the first outcome (which would let a
//   reused transfer id pay a second recipient from one debit).
import { SqlDurableObject } from "./sql.ts";

const MIGRATIONS = [
  `CREATE TABLE entries (id INTEGER PRIMARY KEY AUTOINCREMENT, request_id TEXT NOT NULL UNIQUE,
     direction TEXT NOT NULL CHECK (direction IN ('income', 'expense')), type TEXT NOT NULL,
     amount INTEGER NOT NULL CHECK (amount > 0), time INTEGER NOT NULL, msm_id INTEGER, detail TEXT NOT NULL DEFAULT '');
   CREATE TABLE account (id INTEGER PRIMARY KEY CHECK (id = 1), balance INTEGER NOT NULL CHECK (balance >= 0),
     reserved INTEGER NOT NULL CHECK (reserved >= 0));
   INSERT INTO account (id, balance, reserved) VALUES (1, 0, 0);
   -- Credits set aside for a measurement at its creation, drawn on as its results are charged.
   CREATE TABLE reservations (msm_id INTEGER PRIMARY KEY, remaining INTEGER NOT NULL CHECK (remaining >= 0));
   -- Outcomes of calls that changed nothing in the journal (refusals, releases), so a retry gets the same answer.
   CREATE TABLE outcomes (request_id TEXT PRIMARY KEY, outcome TEXT NOT NULL);`,
  // What each request id did, so a reuse for something else is refused (rows before this migration bind nothing).
  `ALTER TABLE outcomes ADD COLUMN binding TEXT;`,
  // The past day's income and expense, for Atlas's daily estimates on /credits/.
  `CREATE INDEX entries_time ON entries (direction, time);`,
];

export type EntryType = "grant" | "probe_uptime" | "probe_results" | "results" | "transfer_in" | "transfer_out";
export type Entry = { id: number; direction: "income" | "expense"; type: EntryType; amount: number; time: number; msm_id: number | null; detail: string };
export type Balance = { balance: number; reserved: number; available: number };
export type Outcome =
  | ({ ok: true; amount: number } & Balance)
  | ({ ok: false; reason: "insufficient"; wanted: number } & Balance)
  | { ok: false; reason: "invalid"; detail: string }
  /** The request id was used before for something else (another amount, recipient, measurement or operation). */
  | { ok: false; reason: "conflict"; detail: string };

export class Ledger extends SqlDurableObject<Env> {
  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env, MIGRATIONS);
  }

  balance(): Balance {
    const { balance, reserved } = this.sql<{ balance: number; reserved: number }>("SELECT balance, reserved FROM account")[0]!;
    return { balance, reserved, available: balance - reserved };
  }

  /** Income (a grant, a probe's uptime or results, a transfer in). */
  credit(requestId: string, amount: number, type: EntryType, detail = ""): Outcome {
    return this.once(requestId, () => {
      if (amount > 0) {
        this.record(requestId, "income", type, amount, null, detail);
        this.sql("UPDATE account SET balance = balance + ?", amount);
      }
      return { ok: true, amount, ...this.balance() };
    }, ["credit", type, amount, null, detail], amount);
  }

  /** Expense from the free balance (a transfer out); refused whole if the free balance cannot cover it. */
  debit(requestId: string, amount: number, type: EntryType, detail = ""): Outcome {
    return this.once(requestId, () => {
      const b = this.balance();
      if (b.available < amount) return { ok: false, reason: "insufficient", wanted: amount, ...b };
      if (amount > 0) {
        this.record(requestId, "expense", type, amount, null, detail);
        this.sql("UPDATE account SET balance = balance - ?", amount);
      }
      return { ok: true, amount, ...this.balance() };
    }, ["debit", type, amount, null, detail], amount);
  }

  /** Sets credits aside for a new measurement; refused whole if the free balance cannot cover them. */
  reserve(requestId: string, msmId: number, amount: number): Outcome {
    return this.once(requestId, () => {
      const b = this.balance();
      if (b.available < amount) return { ok: false, reason: "insufficient", wanted: amount, ...b };
      this.sql("INSERT INTO reservations (msm_id, remaining) VALUES (?, ?) ON CONFLICT (msm_id) DO UPDATE SET remaining = remaining + excluded.remaining", msmId, amount);
      this.sql("UPDATE account SET reserved = reserved + ?", amount);
      return { ok: true, amount, ...this.balance() };
    }, ["reserve", null, amount, msmId, ""], amount);
  }

  /**
   * Charges a measurement's delivered results: from its reservation first, then from the free balance. What the
   * balance cannot cover is not charged (the balance never goes negative) and the outcome says so, so the caller
   * can stop the measurement.
   */
  charge(requestId: string, msmId: number, amount: number, detail = ""): Outcome {
    return this.once(requestId, () => {
      const reserved = this.sql<{ remaining: number }>("SELECT remaining FROM reservations WHERE msm_id = ?", msmId)[0]?.remaining ?? 0;
      const fromReservation = Math.min(reserved, amount);
      const fromFree = Math.min(amount - fromReservation, this.balance().available);
      const charged = fromReservation + fromFree;
      if (fromReservation > 0) {
        this.sql("UPDATE reservations SET remaining = remaining - ? WHERE msm_id = ?", fromReservation, msmId);
        this.sql("UPDATE account SET reserved = reserved - ?", fromReservation);
      }
      if (charged > 0) {
        this.record(requestId, "expense", "results", charged, msmId, detail);
        this.sql("UPDATE account SET balance = balance - ?", charged);
      }
      if (charged < amount) return { ok: false, reason: "insufficient", wanted: amount, ...this.balance() };
      return { ok: true, amount: charged, ...this.balance() };
    }, ["charge", "results", amount, msmId, detail], amount);
  }

  /** A measurement is over: what is left of its reservation is free again. */
  release(requestId: string, msmId: number): Outcome {
    return this.once(requestId, () => {
      const left = this.sql<{ remaining: number }>("DELETE FROM reservations WHERE msm_id = ? RETURNING remaining", msmId)[0]?.remaining ?? 0;
      if (left > 0) this.sql("UPDATE account SET reserved = reserved - ?", left);
      return { ok: true, amount: left, ...this.balance() };
    }, ["release", null, null, msmId, ""]);
  }

  /** Journal items, newest first. */
  items(direction: "income" | "expense", limit: number, offset: number): { count: number; items: Entry[] } {
    const count = this.sql<{ n: number }>("SELECT COUNT(*) AS n FROM entries WHERE direction = ?", direction)[0]!.n;
    const items = this.sql<Entry>(
      "SELECT id, direction, type, amount, time, msm_id, detail FROM entries WHERE direction = ? ORDER BY id DESC LIMIT ? OFFSET ?",
      direction, limit, offset);
    return { count, items };
  }

  /** Income and expense since `since` (unix seconds), and when the newest of each was booked. */
  since(since: number): { income: number; expense: number; last_income: number | null; last_expense: number | null } {
    const of = (direction: string) => this.sql<{ s: number | null; last: number | null }>(
      "SELECT (SELECT SUM(amount) FROM entries WHERE direction = ? AND time >= ?) AS s, (SELECT MAX(time) FROM entries WHERE direction = ?) AS last",
      direction, since, direction)[0]!;
    const income = of("income"), expense = of("expense");
    return { income: income.s ?? 0, expense: expense.s ?? 0, last_income: income.last, last_expense: expense.last };
  }

  /** Sums the journal and the reservations: what the invariants are checked against. */
  audit(): Balance & { income: number; expense: number; reservations: number } {
    const sum = (direction: string) => this.sql<{ s: number | null }>("SELECT SUM(amount) AS s FROM entries WHERE direction = ?", direction)[0]!.s ?? 0;
    const reservations = this.sql<{ s: number | null }>("SELECT SUM(remaining) AS s FROM reservations")[0]!.s ?? 0;
    return { ...this.balance(), income: sum("income"), expense: sum("expense"), reservations };
  }

  /**
   * Runs a change once per request id, in one transaction; a repeated id gets the first outcome back if it asks for
   * the same thing (`binding`), and a conflict if it asks for anything else.
   */
  private once(requestId: string, change: () => Outcome, binding: (string | number | null)[], amount?: number): Outcome {
    this.used.requests++;
    // Refused, not thrown: the caller is told what is wrong, and nothing is recorded.
    if (typeof requestId !== "string" || requestId.length === 0 || requestId.length > 200) return { ok: false, reason: "invalid", detail: "a request id (1-200 characters) is required" };
    if (amount !== undefined && (!Number.isSafeInteger(amount) || amount < 0)) return { ok: false, reason: "invalid", detail: `amount must be a whole number of credits ≥ 0, not ${amount}` };
    const bound = JSON.stringify(binding);
    const seen = this.sql<{ outcome: string; binding: string | null }>("SELECT outcome, binding FROM outcomes WHERE request_id = ?", requestId)[0];
    if (seen) {
      if (seen.binding !== null && seen.binding !== bound) {
        const [op, , was, msm, detail] = JSON.parse(seen.binding) as (string | number | null)[];
        return { ok: false, reason: "conflict", detail: `request id ${requestId} was already used for another ${op} (${[was !== null ? `${was} credits` : "", msm !== null ? `measurement ${msm}` : "", detail].filter(Boolean).join(", ")})` };
      }
      return JSON.parse(seen.outcome) as Outcome;
    }
    return this.ctx.storage.transactionSync(() => {
      const outcome = change();
      this.sql("INSERT INTO outcomes (request_id, outcome, binding) VALUES (?, ?, ?)", requestId, JSON.stringify(outcome), bound);
      return outcome;
    });
  }

  private record(requestId: string, direction: "income" | "expense", type: EntryType, amount: number, msmId: number | null, detail: string): void {
    this.sql("INSERT INTO entries (request_id, direction, type, amount, time, msm_id, detail) VALUES (?, ?, ?, ?, ?, ?, ?)",
      requestId, direction, type, amount, Math.floor(Date.now() / 1000), msmId, detail);
  }
}
