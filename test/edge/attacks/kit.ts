// What the attack tests share: reading back what an attack must not have changed (balances, stored results,
// visibility), through the same API a user has, against the edge as deployed (vitest.config.ts, "edge-strict").
import { ADMIN, call, post } from "../harness.ts";

export type Balance = { account: string; current_balance: number; reserved: number; available: number };

export async function balance(key: string): Promise<Balance> {
  const res = await call("/api/v2/credits/", { headers: { Authorization: `Key ${key}` } });
  if (res.status !== 200) throw new Error(`credits: ${res.status} ${await res.text()}`);
  return (await res.json()) as Balance;
}

export const auth = (key: string) => ({ Authorization: `Key ${key}` });
export const adminAuth = { Authorization: `Bearer ${ADMIN}` };

/** Every result stored for a measurement on a shard (flushed to R2 first), read back through the API. */
export async function stored(id: number, shard = "weur-0", key?: string): Promise<{ prb_id: number; timestamp: number }[]> {
  await post(`/admin/controllers/${shard}/flush`, {}, adminAuth);
  const res = await call(`/api/v2/measurements/${id}/results/`, key ? { headers: auth(key) } : {});
  if (res.status !== 200) throw new Error(`results: ${res.status} ${await res.text()}`);
  return (await res.json()) as { prb_id: number; timestamp: number }[];
}

export async function expense(key: string): Promise<{ type: string; amount: number; measurement: number | null }[]> {
  return ((await (await call("/api/v2/credits/expense-items/", { headers: auth(key) })).json()) as { results: { type: string; amount: number; measurement: number | null }[] }).results;
}

/** An Atlas error body, checked to be one: status, detail, and the pointers (or parameters) it names. */
export async function atlasError(res: Response): Promise<{ status: number; detail: string; pointers: string[] }> {
  const body = (await res.json()) as { error?: { status: number; detail: string; errors: { source: { pointer?: string; parameter?: string } }[] } };
  if (!body.error || typeof body.error.detail !== "string" || body.error.status !== res.status) throw new Error(`not an Atlas error body: ${JSON.stringify(body)}`);
  return { status: body.error.status, detail: body.error.detail, pointers: body.error.errors.map((e) => e.source.pointer ?? e.source.parameter ?? "") };
}
