// The credit ledger inside workerd: idempotent calls, a balance that never goes negative nor below what is reserved,
// and a journal that always reconciles (Σ income − Σ expense = balance), under random interleavings of concurrent
// calls with retries, and across restarts of the object (ctx.abort(): the next call gets a new instance on the same
// storage).
import { runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { env } from "./harness.ts";

const ledger = (account: string) => env.LEDGER.getByName(account);

async function reconciles(account: string): Promise<void> {
  const a = await ledger(account).audit();
  expect(a.income - a.expense).toBe(a.balance);
  expect(a.balance).toBeGreaterThanOrEqual(0);
  expect(a.reserved).toBe(a.reservations);
  expect(a.available).toBeGreaterThanOrEqual(0);
}

describe("credit ledger", () => {
  it("credits, debits and refuses what the free balance cannot cover; a repeated request id changes nothing", async () => {
    const l = ledger("acct-basic");
    expect(await l.credit("grant-1", 100, "grant", "welcome")).toMatchObject({ ok: true, amount: 100, balance: 100 });
    expect(await l.credit("grant-1", 100, "grant", "welcome")).toMatchObject({ ok: true, balance: 100 });  // a retry
    expect(await l.debit("out-1", 150, "transfer_out")).toMatchObject({ ok: false, reason: "insufficient", wanted: 150, balance: 100 });
    expect(await l.debit("out-2", 40, "transfer_out")).toMatchObject({ ok: true, balance: 60 });
    expect(await l.debit("out-2", 40, "transfer_out")).toMatchObject({ ok: true, balance: 60 });
    // A refusal is remembered too: the same id stays refused even once the balance could cover it.
    await l.credit("grant-2", 1000, "grant");
    expect(await l.debit("out-1", 150, "transfer_out")).toMatchObject({ ok: false, reason: "insufficient" });
    expect(await l.credit("", 5, "grant")).toMatchObject({ ok: false, reason: "invalid", detail: expect.stringMatching(/request id/) });
    expect(await l.credit("bad", -5, "grant")).toMatchObject({ ok: false, reason: "invalid", detail: expect.stringMatching(/whole number of credits/) });
    expect(await l.credit("bad", 1.5, "grant")).toMatchObject({ ok: false, reason: "invalid" });
    const income = await l.items("income", 10, 0);
    expect(income.count).toBe(2);
    expect(income.items.map((i) => [i.type, i.amount, i.detail])).toEqual([["grant", 1000, ""], ["grant", 100, "welcome"]]);
    await reconciles("acct-basic");
  });

  it("reserves for a measurement, charges its results from the reservation then the free balance, never below zero", async () => {
    const l = ledger("acct-msm");
    await l.credit("g", 100, "grant");
    expect(await l.reserve("r-7", 7, 60)).toMatchObject({ ok: true, balance: 100, reserved: 60, available: 40 });
    // Another measurement cannot take what is reserved for measurement 7.
    expect(await l.reserve("r-8", 8, 50)).toMatchObject({ ok: false, reason: "insufficient", available: 40 });
    expect(await l.charge("c-7-a", 7, 50)).toMatchObject({ ok: true, amount: 50, balance: 50, reserved: 10 });
    // 30 more: 10 left in the reservation, 20 from the free balance.
    expect(await l.charge("c-7-b", 7, 30)).toMatchObject({ ok: true, amount: 30, balance: 20, reserved: 0, available: 20 });
    // More than is left: what there is is charged, the rest is not, and the outcome says so.
    expect(await l.charge("c-7-c", 7, 50)).toMatchObject({ ok: false, reason: "insufficient", wanted: 50, balance: 0 });
    expect(await l.charge("c-7-c", 7, 50)).toMatchObject({ ok: false, balance: 0 });
    await l.credit("g2", 30, "grant");
    expect(await l.reserve("r-9", 9, 30)).toMatchObject({ ok: true, reserved: 30 });
    expect(await l.release("end-9", 9)).toMatchObject({ ok: true, amount: 30, reserved: 0, available: 30 });
    expect(await l.release("end-9", 9)).toMatchObject({ ok: true, amount: 30 });
    const expense = await l.items("expense", 10, 0);
    expect(expense.items.map((i) => [i.msm_id, i.amount])).toEqual([[7, 20], [7, 30], [7, 50]]);
    await reconciles("acct-msm");
  });

  it("reconciles after random concurrent earn/spend/reserve/charge/release with retries, and 1,000 concurrent spends", async () => {
    // A seeded generator, so a failure can be replayed.
    let seed = 20261126;
    const rand = (n: number) => { seed = (seed * 1103515245 + 12345) & 0x7fffffff; return seed % n; };
    const account = "acct-random";
    const calls: (() => Promise<unknown>)[] = [];
    for (let i = 0; i < 400; i++) {
      const id = `op-${rand(300)}`;  // ids repeat: retries of the same call, possibly with other arguments
      const msm = 1 + rand(5);
      const amount = rand(50);
      switch (rand(6)) {
        case 0: calls.push(() => ledger(account).credit(`${id}-c`, amount, "probe_uptime")); break;
        case 1: calls.push(() => ledger(account).debit(`${id}-d`, amount, "transfer_out")); break;
        case 2: calls.push(() => ledger(account).reserve(`${id}-r`, msm, amount)); break;
        case 3: calls.push(() => ledger(account).charge(`${id}-x`, msm, amount)); break;
        case 4: calls.push(() => ledger(account).release(`${id}-e`, msm)); break;
        default: calls.push(() => ledger(account).audit());
      }
    }
    // In concurrent waves, each call through a fresh stub; the object restarts between waves.
    let instances = 0;
    for (let i = 0; i < calls.length; i += 50) {
      await Promise.all(calls.slice(i, i + 50).map((c) => c()));
      await runInDurableObject(ledger(account), (instance, state) => {
        instances++;
        (instance as unknown as { marked?: number }).marked ??= instances;
        state.abort("restart");
      }).catch(() => {});
      await runInDurableObject(ledger(account), (instance) => {
        // A new instance: not the one marked before the abort.
        expect((instance as unknown as { marked?: number }).marked).toBeUndefined();
      });
    }
    await reconciles(account);

    const spender = "acct-spender";
    await ledger(spender).credit("seed", 600, "grant");
    const spends = await Promise.all(Array.from({ length: 1000 }, (_, i) => ledger(spender).debit(`spend-${i}`, 1, "transfer_out")));
    expect(spends.filter((s) => s.ok)).toHaveLength(600);
    expect(spends.filter((s) => !s.ok)).toHaveLength(400);
    expect(await ledger(spender).balance()).toEqual({ balance: 0, reserved: 0, available: 0 });
    await reconciles(spender);
  });
});
