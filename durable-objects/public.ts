// Which measurements are public, asked of the brain once per measurement and remembered (publicity never changes):
// the stream, archive bundles, queries across measurements and per-AS aggregates carry public measurements only.
import { BRAIN_NAME, type Env } from "./env.ts";

export class PublicMeasurements {
  private readonly known = new Map<number, boolean>();
  private readonly env: Env;

  constructor(env: Env) {
    this.env = env;
  }

  /** Whether measurement `id` is public (false for one that does not exist). */
  async is(id: number): Promise<boolean> {
    await this.learn([id]);
    return this.known.get(id)!;
  }

  /** The items that belong to public measurements. */
  async only<T extends { msm_id: number }>(items: T[]): Promise<T[]> {
    await this.learn(items.map((i) => i.msm_id));
    return items.filter((i) => this.known.get(i.msm_id));
  }

  private async learn(ids: number[]): Promise<void> {
    const unknown = [...new Set(ids)].filter((id) => !this.known.has(id));
    if (!unknown.length) return;
    for (const [id, flag] of Object.entries(await this.env.BRAIN.getByName(BRAIN_NAME).publicFlags(unknown))) this.known.set(Number(id), flag);
  }
}
