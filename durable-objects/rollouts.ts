// Staged rollouts of signed agent releases, kept by the brain: a release offered to a share of the probes through
// their controllers, widened or superseded by the operator, halted by the probes' reports (refusals and rollbacks
// up to the rollout's limit). The probes verify every release against the key they pin; the edge holds none.
import type { ReleaseManifest, ReleaseOffer } from "../protocol/release.ts";
import { controllerStub, SHARDS } from "./shards.ts";
import type { Sql } from "./sql.ts";

/** A staged rollout as the operator sees it (`GET /admin/rollouts`). */
export type Rollout = {
  id: number; version: string; manifest: ReleaseManifest; percent: number; max_failures: number;
  state: "active" | "halted" | "superseded"; reason: string | null; created: number;
  probes: { running: number; refused: number; rolled_back: number };
  failures: { probe_id: number; state: string; detail: string; at: number }[];
};
type RolloutRow = Omit<Rollout, "manifest" | "probes" | "failures"> & { manifest: string };


/** What rollouts need of the brain. */
export type RolloutsHost = {
  ctx: DurableObjectState;
  env: () => Env;
  sql: Sql;
};

export class Rollouts {
  private readonly h: RolloutsHost;
  constructor(host: RolloutsHost) {
    this.h = host;
  }

  /**
   * Starts (or widens) the staged rollout of a release: `percent` of the probes, chosen by inRollout(), are offered
   * it by their controllers. The same version again changes the percentage and the failure limit of the rollout
   * in progress; another version supersedes it.
   */
  async start(manifest: ReleaseManifest, percent: number, maxFailures: number): Promise<Rollout> {
    const now = Math.floor(Date.now() / 1000);
    const active = this.current();
    if (active?.state === "active" && active.version === manifest.version) {
      this.h.sql("UPDATE rollouts SET percent = ?, max_failures = ? WHERE id = ?", percent, maxFailures, active.id);
    } else {
      this.h.ctx.storage.transactionSync(() => {
        this.h.sql("UPDATE rollouts SET state = 'superseded', reason = ? WHERE state = 'active'", `superseded by ${manifest.version}`);
        this.h.sql("INSERT INTO rollouts (version, manifest, percent, max_failures, state, created) VALUES (?, ?, ?, ?, 'active', ?)",
          manifest.version, JSON.stringify(manifest), percent, maxFailures, now);
      });
    }
    const rollout = this.current()!;
    await this.announce(rollout);
    return rollout;
  }

  /** Stops offering the release in progress; probes that already run it keep it (roll out the old one to undo). */
  async halt(reason: string): Promise<Rollout | null> {
    const active = this.current();
    if (active?.state !== "active") return active;
    this.h.sql("UPDATE rollouts SET state = 'halted', reason = ? WHERE id = ?", reason, active.id);
    const halted = this.current()!;
    await this.announce(halted);
    return halted;
  }

  /**
   * A probe's report on the release it was offered. Refusals and rollbacks count as failures; at the rollout's
   * limit it halts, so a bad release stops at the first few probes.
   */
  async report(r: { rollout: number; probe_id: number; version: string; state: "running" | "refused" | "rolled_back"; detail: string }): Promise<void> {
    const row = this.h.sql<RolloutRow>("SELECT * FROM rollouts WHERE id = ?", r.rollout)[0];
    if (!row || row.version !== r.version) return;
    this.h.sql(`INSERT INTO rollout_reports (rollout_id, probe_id, state, detail, at) VALUES (?, ?, ?, ?, ?)
                ON CONFLICT (rollout_id, probe_id) DO UPDATE SET state = excluded.state, detail = excluded.detail, at = excluded.at`,
      r.rollout, r.probe_id, r.state, r.detail, Math.floor(Date.now() / 1000));
    const failures = this.h.sql<{ n: number }>("SELECT COUNT(*) AS n FROM rollout_reports WHERE rollout_id = ? AND state != 'running'", r.rollout)[0]!.n;
    if (row.state === "active" && r.state !== "running" && failures >= row.max_failures) {
      await this.halt(`${failures} probe(s) failed the release; last: probe ${r.probe_id} ${r.state.replace("_", " ")}: ${r.detail}`);
    }
  }

  /** The latest rollout, with what its probes reported. */
  current(): Rollout | null {
    const row = this.h.sql<RolloutRow>("SELECT * FROM rollouts ORDER BY id DESC LIMIT 1")[0];
    if (!row) return null;
    const reports = this.h.sql<{ probe_id: number; state: string; detail: string; at: number }>(
      "SELECT probe_id, state, detail, at FROM rollout_reports WHERE rollout_id = ? ORDER BY at, probe_id", row.id);
    const count = (state: string) => reports.filter((x) => x.state === state).length;
    return {
      ...row, manifest: JSON.parse(row.manifest) as ReleaseManifest,
      probes: { running: count("running"), refused: count("refused"), rolled_back: count("rolled_back") },
      failures: reports.filter((x) => x.state !== "running"),
    };
  }

  /** Tells every controller what its probes should run now (nothing new, once a rollout is halted). */
  private async announce(rollout: Rollout): Promise<void> {
    const offer: (ReleaseOffer & { percent: number }) | null = rollout.state === "active"
      ? { ...rollout.manifest, rollout: rollout.id, path: `/probe/v1/releases/${rollout.version}`, percent: rollout.percent }
      : null;
    await Promise.all(SHARDS.map(async (shard) => {
      try {
        await controllerStub(this.h.env().CONTROLLER, shard).setRelease(offer);
      } catch (e) {
        console.error(`brain: announcing the release to ${shard.name} failed: ${String(e)}`);
      }
    }));
  }
}
