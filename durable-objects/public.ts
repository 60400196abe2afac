// Which measurements are public, asked of the brain once per measurement and remembered (publicity never changes;
// an id that does not exist yet is asked again next time, since it may be created as a public measurement):
// the stream, archive bundles, queries across measurements and per-AS aggregates carry public measurements only.
import { BRAIN_NAME } from "./env.ts";

export class PublicMeasurements {
  private readonly known = new Map<number, boolean>();
  private readonly env: Env;

  constructor(env: Env) {
    this.env = env;
  }

  /** Whether measurement `id` is public (false for one that does not exist). */
  async is(id: number): Promise<boolean> {
    return (await this.learn([id])).get(id) ?? false;
  }

  /** The items that belong to public measurements. */
  async only<T extends { msm_id: number }>(items: T[]): Promise<T[]> {
    const flags = await this.learn(items.map((i) => i.msm_id));
    return items.filter((i) => flags.get(i.msm_id));
  }

  /** The flags of `ids`: remembered ones, and the rest asked of the brain (existing ones then remembered). */
  private async learn(ids: number[]): Promise<Map<number, boolean>> {
    const unknown = [...new Set(ids)].filter((id) => !this.known.has(id));
    const answered: Record<number, boolean | null> = unknown.length ? await this.env.BRAIN.getByName(BRAIN_NAME).publicFlags(unknown) : {};
    const out = new Map<number, boolean>();
    for (const id of ids) out.set(id, this.known.get(id) ?? false);
    for (const [id, flag] of Object.entries(answered)) {
      if (flag !== null) this.known.set(Number(id), flag);
      out.set(Number(id), flag ?? false);
    }
    return out;
  }
}
