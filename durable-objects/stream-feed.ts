// A controller's side of the result stream: what the hub says its subscribers want (kept in storage across
// evictions), and the stored results that match, sent to the hub once whatever the number of subscribers.
import type { Result } from "../protocol/index.ts";
import { type Interest, STREAM_NAME } from "./stream.ts";

export class StreamFeed {
  private readonly ctx: DurableObjectState;
  private readonly env: () => Env;
  private readonly shard: () => string;
  private cached: Interest | null | undefined;

  constructor(ctx: DurableObjectState, env: () => Env, shard: () => string) {
    this.ctx = ctx;
    this.env = env;
    this.shard = shard;
  }

  /** What the stream's subscribers want, as the hub last said. */
  async interest(): Promise<Interest | null> {
    if (this.cached === undefined) this.cached = (await this.ctx.storage.get<Interest>("stream_interest")) ?? null;
    return this.cached;
  }

  async setInterest(interest: Interest): Promise<void> {
    this.cached = interest;
    await this.ctx.storage.put("stream_interest", interest);
  }

  /** Sends the hub the stored results someone subscribed to. */
  async publish(results: Result[]): Promise<void> {
    const i = await this.interest();
    if (!i || (!i.all && !i.msm.length && !i.prb.length && !i.type.length)) return;
    const wanted = i.all ? results : results.filter((r) => i.msm.includes(r.msm_id) || i.prb.includes(r.prb_id) || i.type.includes(r.type));
    if (!wanted.length) return;
    try {
      await this.env().STREAM.getByName(STREAM_NAME).publish(wanted);
    } catch (e) {
      console.error(`controller ${this.shard()}: results to the stream failed: ${String(e)}`);
    }
  }
}
