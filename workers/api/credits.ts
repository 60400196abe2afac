// /api/v2/credits/: the caller's account balance (Atlas's credits object, plus what is reserved for its running
// measurements), its income and expense items, and transfers to another account.
import type { IRequest } from "itty-router";
import { z } from "zod";
import { REGISTRY_NAME } from "../../durable-objects/env.ts";
import type { Entry } from "../../durable-objects/ledger.ts";
import { isoTime } from "../../protocol/index.ts";
import { requireKey } from "./auth.ts";
import { ApiError, fieldError, readJson, validationError } from "./errors.ts";
import { page, pageOf } from "./pagination.ts";

export async function credits(request: IRequest, env: Env): Promise<Response> {
  const { account } = await requireKey(request, env, "get_credits");
  const url = new URL(request.url);
  const ledger = env.LEDGER.getByName(account);
  const now = Math.floor(Date.now() / 1000);
  const [b, day] = await Promise.all([ledger.balance(), ledger.since(now - 86_400)]);
  // Atlas's daily estimates, from the past day's journal: what came in and went out in the last 24 hours.
  const dailyBalance = day.income - day.expense;
  const body: Record<string, unknown> = {
    account,
    current_balance: b.balance,
    reserved: b.reserved,
    available: b.available,
    estimated_daily_income: day.income,
    estimated_daily_expenditure: day.expense,
    estimated_daily_balance: dailyBalance,
    // At the past day's rate, when the free credits are gone (null while the balance grows).
    estimated_runout_seconds: dailyBalance < 0 ? Math.floor((b.available / -dailyBalance) * 86_400) : null,
    past_day_credits_spent: day.expense,
    last_date_credited: isoTime(day.last_income),
    last_date_debited: isoTime(day.last_expense),
    income_items: `${url.origin}/api/v2/credits/income-items/`,
    expense_items: `${url.origin}/api/v2/credits/expense-items/`,
    calculation_time: isoTime(now),
  };
  // Atlas's include=income_items,expense_items embeds the first page of each instead of its URL.
  const include = (url.searchParams.get("include") ?? "").split(",");
  for (const direction of ["income", "expense"] as const) {
    if (include.includes(`${direction}_items`)) body[`${direction}_items`] = (await ledger.items(direction, 100, 0)).items.map(item);
  }
  return Response.json(body);
}

export async function creditItems(request: IRequest, env: Env): Promise<Response> {
  const { account } = await requireKey(request, env, "get_credits");
  const url = new URL(request.url);
  const direction = url.pathname.includes("/income-items") ? "income" : "expense";
  const { offset, limit } = pageOf(url);
  const { count, items } = await env.LEDGER.getByName(account).items(direction, limit, offset);
  return Response.json(page(url, count, items.map(item)));
}

function item(e: Entry): Record<string, unknown> {
  return { id: e.id, type: e.type, amount: e.amount, time: e.time, measurement: e.msm_id, detail: e.detail };
}

const Transfer = z.object({
  recipient: z.string().regex(/^[A-Za-z0-9_.-]{1,64}$/, "recipient must be an account id."),
  amount: z.number().int("amount must be a whole number of credits.").min(1, "amount must be at least 1 credit."),
  /** Makes a retried transfer happen once. */
  request_id: z.string().min(1).max(100).optional(),
});

/**
 * POST /api/v2/credits/transfers/ {recipient, amount}: taken from the caller's free balance, then given to the
 * recipient, both under one request id, so a retry after any failure completes the transfer exactly once. The id is
 * bound to the transfer: the same id with another recipient or amount is refused (409), and the recipient is
 * credited exactly what the debit took.
 */
export async function transfer(request: IRequest, env: Env): Promise<Response> {
  const { account } = await requireKey(request, env, "transfer_credits");
  const parsed = Transfer.safeParse(await readJson(request));
  if (!parsed.success) throw validationError(parsed.error);
  const t = parsed.data;
  if (t.recipient === account) throw fieldError("/recipient", "A transfer needs another account as recipient.");
  if (!(await env.REGISTRY.getByName(REGISTRY_NAME).accountExists(t.recipient))) {
    throw fieldError("/recipient", `No account "${t.recipient}": credits sent there could never be spent.`);
  }
  const header = request.headers.get("Idempotency-Key");
  if (t.request_id !== undefined && header !== null && header !== t.request_id) throw fieldError("/request_id", "Disagrees with the Idempotency-Key header.");
  const given = t.request_id ?? header;
  const id = `transfer:${account}:${given ?? crypto.randomUUID()}`;
  const out = await env.LEDGER.getByName(account).debit(id, t.amount, "transfer_out", `to ${t.recipient}`);
  if (!out.ok) {
    if (out.reason === "conflict") throw new ApiError(409, `request_id ${given} was already used for another transfer.`, [{ source: { pointer: "/request_id" }, detail: out.detail }]);
    if (out.reason === "invalid") throw new ApiError(400, out.detail);
    throw new ApiError(402, `Not enough free credits: ${t.amount} wanted, ${out.available} free (${out.reserved} are set aside for running measurements).`);
  }
  const got = await env.LEDGER.getByName(t.recipient).credit(id, out.amount, "transfer_in", `from ${account}`);
  if (!got.ok) {
    // Cannot happen for a debit that went through (the id is the sender's), but money is never silently lost.
    console.error(`transfer ${id}: debited ${out.amount} from ${account}, crediting ${t.recipient} refused: ${JSON.stringify(got)}`);
    throw new ApiError(500, "The transfer was debited but not credited; retrying it with the same request_id completes it.");
  }
  return Response.json({ recipient: t.recipient, amount: out.amount, current_balance: out.balance, request_id: given }, { status: 201 });
}
