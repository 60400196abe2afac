// Attacks on money: minting credits with reused request ids, paying accounts nobody holds, spending what is set
// aside; then random interleavings of every ledger operation (fast-check) with the ledgers' books checked after each.
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { env, newKey, post } from "../harness.ts";
import { adminAuth, atlasError, auth, balance, type Balance } from "./kit.ts";

const transfer = (key: string, body: Record<string, unknown>, headers: Record<string, string> = {}) =>
  post("/api/v2/credits/transfers/", body, { ...auth(key), ...headers });

async function accounts(n: number, credits = 1000): Promise<{ key: string; account: string }[]> {
  return Promise.all(Array.from({ length: n }, async (_, i) => {
    const key = await newKey(`money-${i}`, credits);
    return { key, account: (await balance(key)).account };
  }));
}

/** The accounts' credit objects, without the time they were computed at (a second can pass between two reads). */
async function balances(keys: string[]): Promise<Balance[]> {
  return (await Promise.all(keys.map(balance))).map((b) => {
    const { calculation_time: _, ...rest } = b as Balance & { calculation_time?: string };
    return rest;
  });
}

describe("attacks on money", () => {
  it("attack: a transfer's request id reused to pay a second recipient from one debit — 409 naming request_id, nothing moves", async () => {
    const [a, b, c] = await accounts(3);
    expect((await transfer(a!.key, { recipient: b!.account, amount: 100, request_id: "pay-1" })).status).toBe(201);
    const before = await balances([a!.key, b!.key, c!.key]);
    const res = await transfer(a!.key, { recipient: c!.account, amount: 100, request_id: "pay-1" });
    expect(res.status).toBe(409);
    expect((await atlasError(res)).pointers).toEqual(["/request_id"]);
    expect(await balances([a!.key, b!.key, c!.key])).toEqual(before);
    expect(before.map((x) => x.current_balance)).toEqual([900, 1100, 1000]);
  });

  it("attack: a transfer's request id reused with a larger amount — 409, nothing moves", async () => {
    const [a, b] = await accounts(2);
    expect((await transfer(a!.key, { recipient: b!.account, amount: 1, request_id: "small" })).status).toBe(201);
    const res = await transfer(a!.key, { recipient: b!.account, amount: 500, request_id: "small" });
    expect(res.status).toBe(409);
    expect((await balances([a!.key, b!.key])).map((x) => x.current_balance)).toEqual([999, 1001]);
  });

  it("attack: the same transfer sent five times at once — moved exactly once", async () => {
    const [a, b] = await accounts(2);
    const all = await Promise.all(Array.from({ length: 5 }, () => transfer(a!.key, { recipient: b!.account, amount: 250, request_id: "burst" })));
    expect(all.map((r) => r.status)).toEqual([201, 201, 201, 201, 201]);
    expect((await balances([a!.key, b!.key])).map((x) => x.current_balance)).toEqual([750, 1250]);
  });

  it("attack: an Idempotency-Key header and a request_id that disagree — 400, nothing moves", async () => {
    const [a, b] = await accounts(2);
    const res = await transfer(a!.key, { recipient: b!.account, amount: 5, request_id: "one" }, { "Idempotency-Key": "two" });
    expect(res.status).toBe(400);
    expect((await atlasError(res)).pointers).toEqual(["/request_id"]);
    expect((await balance(a!.key)).current_balance).toBe(1000);
  });

  it("attack: credits sent to an account nobody holds (lost for good) or to oneself — 400 naming recipient", async () => {
    const [a] = await accounts(1);
    for (const recipient of ["acct-nobody-holds-this", a!.account]) {
      const res = await transfer(a!.key, { recipient, amount: 10 });
      expect(res.status).toBe(400);
      expect((await atlasError(res)).pointers).toEqual(["/recipient"]);
    }
    expect((await balance(a!.key)).current_balance).toBe(1000);
  });

  it.each([[0], [-5], [1.5], [1e300], ["10"], [null], [Number.MAX_SAFE_INTEGER + 2]])("attack: a transfer of %s credits — 400 naming amount, nothing moves", async (amount) => {
    const [a, b] = await accounts(2);
    const res = await transfer(a!.key, { recipient: b!.account, amount });
    expect(res.status).toBe(400);
    expect((await atlasError(res)).pointers).toEqual(["/amount"]);
    expect((await balances([a!.key, b!.key])).map((x) => x.current_balance)).toEqual([1000, 1000]);
  });

  it("attack: spending credits set aside for running measurements — 402, the reservation stays whole", async () => {
    const [a, b] = await accounts(2, 100);
    expect((await env.LEDGER.getByName(a!.account).reserve("reserve:1", 1, 80)).ok).toBe(true);
    const res = await transfer(a!.key, { recipient: b!.account, amount: 50 });
    expect(res.status).toBe(402);
    expect(await balance(a!.key)).toMatchObject({ current_balance: 100, reserved: 80, available: 20 });
  });

  it("attack: an operator grant's request id reused with another amount — 409, granted once", async () => {
    const [a] = await accounts(1, 0);
    expect((await post(`/admin/accounts/${a!.account}/credits`, { credits: 10, request_id: "g-1" }, adminAuth)).status).toBe(201);
    const res = await post(`/admin/accounts/${a!.account}/credits`, { credits: 10_000, request_id: "g-1" }, adminAuth);
    expect(res.status).toBe(409);
    expect((await atlasError(res)).pointers).toEqual(["/request_id"]);
    expect((await balance(a!.key)).current_balance).toBe(10);
  });

  it("attack: an operator grant's request id reused for another account — 409, the second account gets nothing", async () => {
    const [a, b] = await accounts(2, 0);
    expect((await post(`/admin/accounts/${a!.account}/credits`, { credits: 10, request_id: "g-2" }, adminAuth)).status).toBe(201);
    const res = await post(`/admin/accounts/${b!.account}/credits`, { credits: 10, request_id: "g-2" }, adminAuth);
    expect(res.status).toBe(409);
    expect((await balances([a!.key, b!.key])).map((x) => x.current_balance)).toEqual([10, 0]);
  });

  it("attack: a ledger request id reused for another operation or measurement — refused as a conflict, nothing changes", async () => {
    const l = env.LEDGER.getByName(`conflicts-${crypto.randomUUID()}`);
    await l.credit("grant:x", 100, "grant");
    expect(await l.reserve("id-1", 7, 30)).toMatchObject({ ok: true, reserved: 30 });
    expect(await l.reserve("id-1", 8, 30)).toMatchObject({ ok: false, reason: "conflict" });
    expect(await l.charge("id-1", 7, 30)).toMatchObject({ ok: false, reason: "conflict" });
    expect(await l.debit("id-1", 30, "transfer_out", "to z")).toMatchObject({ ok: false, reason: "conflict" });
    expect(await l.reserve("id-1", 7, 30)).toMatchObject({ ok: true, reserved: 30 });  // the same thing again: its first outcome
    expect(await l.audit()).toMatchObject({ balance: 100, reserved: 30, income: 100, expense: 0, reservations: 30 });
  });
});

describe("the ledgers' books under random interleavings (fast-check)", () => {
  type Op =
    | { op: "grant"; to: number; amount: number; id: number }
    | { op: "transfer"; from: number; to: number; amount: number; id: number }
    | { op: "reserve"; at: number; msm: number; amount: number; id: number }
    | { op: "charge"; at: number; msm: number; amount: number; id: number }
    | { op: "release"; at: number; msm: number; id: number }
    | { op: "payout"; to: number; amount: number; id: number };
  const who = fc.integer({ min: 0, max: 2 });
  const amount = fc.integer({ min: 0, max: 400 });
  // A handful of ids and measurements, so retries and reused ids (with other parameters) are common.
  const id = fc.integer({ min: 0, max: 5 });
  const msm = fc.integer({ min: 1, max: 3 });
  const op: fc.Arbitrary<Op> = fc.oneof(
    fc.record({ op: fc.constant("grant" as const), to: who, amount: fc.integer({ min: 1, max: 400 }), id }),
    fc.record({ op: fc.constant("transfer" as const), from: who, to: who, amount, id: fc.integer({ min: 0, max: 2 }) }),
    fc.record({ op: fc.constant("reserve" as const), at: who, msm, amount, id }),
    fc.record({ op: fc.constant("charge" as const), at: who, msm, amount, id }),
    fc.record({ op: fc.constant("release" as const), at: who, msm, id }),
    fc.record({ op: fc.constant("payout" as const), to: who, amount: fc.integer({ min: 1, max: 100 }), id }),
  );

  it("keeps every journal explaining its balance, nothing negative, and the total changed only by grants, payouts and charges", async () => {
    let run = 0;
    await fc.assert(fc.asyncProperty(fc.array(fc.array(op, { minLength: 1, maxLength: 4 }), { minLength: 1, maxLength: 8 }), async (rounds) => {
      const people = await accounts(3, 500);
      const tag = `r${run++}-${crypto.randomUUID().slice(0, 8)}`;
      const ledger = (i: number) => env.LEDGER.getByName(people[i]!.account);
      const apply = async (o: Op): Promise<void> => {
        switch (o.op) {
          case "grant":
            await post(`/admin/accounts/${people[o.to]!.account}/credits`, { credits: o.amount, request_id: `${tag}-${o.id}` }, adminAuth);  // 201 or 409
            return;
          case "transfer": {
            const res = await transfer(people[o.from]!.key, { recipient: people[o.to]!.account, amount: o.amount, request_id: `t${o.id}` });
            expect([201, 400, 402, 409]).toContain(res.status);
            return;
          }
          case "reserve": await ledger(o.at).reserve(`reserve:${o.id}`, o.msm, o.amount); return;
          case "charge": await ledger(o.at).charge(`charge:${o.id}`, o.msm, o.amount, "results"); return;
          case "release": await ledger(o.at).release(`release:${o.id}`, o.msm); return;
          case "payout": await ledger(o.to).credit(`uptime:${o.id}`, o.amount, "probe_uptime"); return;
        }
      };
      for (const round of rounds) {
        await Promise.all(round.map(apply));  // the operations of a round interleave
        let total = 0, minted = 0, transferredIn = 0, transferredOut = 0;
        for (let i = 0; i < 3; i++) {
          const a = await ledger(i).audit();
          expect(a.balance).toBe(a.income - a.expense);
          expect(a.balance).toBeGreaterThanOrEqual(0);
          expect(a.reserved).toBeGreaterThanOrEqual(0);
          expect(a.reserved).toBe(a.reservations);
          expect(a.reserved).toBeLessThanOrEqual(a.balance);
          total += a.balance;
          const income = (await ledger(i).items("income", 1000, 0)).items;
          const expense = (await ledger(i).items("expense", 1000, 0)).items;
          minted += income.filter((e) => e.type === "grant" || e.type === "probe_uptime").reduce((n, e) => n + e.amount, 0);
          minted -= expense.filter((e) => e.type === "results").reduce((n, e) => n + e.amount, 0);
          transferredIn += income.filter((e) => e.type === "transfer_in").reduce((n, e) => n + e.amount, 0);
          transferredOut += expense.filter((e) => e.type === "transfer_out").reduce((n, e) => n + e.amount, 0);
        }
        expect(transferredIn).toBe(transferredOut);
        expect(total).toBe(minted);
      }
    }), { numRuns: 30 });
  }, 120_000);
});
