// Registry: the enrolled probes (public key, location, ASN, status), their registration challenges, the load each
// controller shard reports, and API keys (stored as SHA-256 hashes) with the account each belongs to. One instance,
// named "registry".
import { compactVerify, importJWK } from "jose";
import { isIPv4, isNonPublicAddress } from "../protocol/index.ts";
import { checkNonce, issueNonce, nonceKey as importNonceKey } from "./nonces.ts";
import { distanceKm } from "./shards.ts";
import { SqlDurableObject, Where } from "./sql.ts";
import type { SessionEvent } from "./presence.ts";
import { type Enrollment, type Grant, GRANTS, type KeyRecord, MIGRATIONS, type ProbeFilter, type ProbeRecord, type Refusal } from "./registry-schema.ts";
import type { Works } from "./system-tags.ts";

/** Atlas's limits on software-probe farming (reference/atlas.md §3): probes connected per address and per /24. */
export const PROBES_PER_ADDRESS = 2;
export const PROBES_PER_PREFIX = 4;

/** Credits a probe's owner earns per connected minute (Atlas: 15). */
export const CREDITS_PER_MINUTE = 15;
/** A probe disconnected this long is Abandoned (status 3) until it connects again. */
export const ABANDON_AFTER_S = 30 * 86_400;
/** How often uptime is paid out (and abandonment checked). */
export const PAYOUT_INTERVAL_S = 3600;

/** The account a key belongs to when none was named: its own, derived from its hash. */
export const accountOfHash = (hash: string) => `acct-${hash.slice(0, 16)}`;

export const CHALLENGE_TTL_MS = 60_000;

export class Registry extends SqlDurableObject<Env> {
  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env, MIGRATIONS);
  }

  enroll(e: Enrollment): { ok: true; probe: ProbeRecord } | Refusal {
    const existing = this.sql<{ id: number }>("SELECT id FROM probes WHERE public_key = ?", e.public_key)[0];
    if (existing) return { ok: false, reason: `this public key is already enrolled as probe ${existing.id}` };
    const now = Math.floor(Date.now() / 1000);
    const row = this.sql<ProbeRecord>(
      `INSERT INTO probes (public_key, description, country_code, asn_v4, prefix_v4, latitude, longitude, status_since, enrolled_at, owner, tags)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING *`,
      e.public_key, e.description ?? "", e.country_code?.toUpperCase() ?? null, e.asn_v4 ?? null, e.prefix_v4 ?? null,
      e.latitude ?? null, e.longitude ?? null, now, now, e.owner ?? null, JSON.stringify(e.tags ?? []),
    )[0]!;
    return { ok: true, probe: row };
  }

  setDisabled(id: number, disabled: boolean): ProbeRecord | null {
    return this.sql<ProbeRecord>("UPDATE probes SET disabled = ? WHERE id = ? RETURNING *", disabled ? 1 : 0, id)[0] ?? null;
  }

  /**
   * The operator writes a probe off (status 4, Written Off: gone for good; refused at registration like a disabled
   * one), or takes it back (disconnected until it connects again).
   */
  setWrittenOff(id: number, writtenOff: boolean): ProbeRecord | null {
    const now = Math.floor(Date.now() / 1000);
    return writtenOff
      ? this.sql<ProbeRecord>(`UPDATE probes SET status_id = 4, status_since = ?, disabled = 1,
           total_uptime = total_uptime + CASE WHEN status_id = 1 THEN MAX(0, ? - status_since) ELSE 0 END WHERE id = ? RETURNING *`, now, now, id)[0] ?? null
      : this.sql<ProbeRecord>("UPDATE probes SET status_id = 2, status_since = ?, disabled = 0 WHERE id = ? AND status_id = 4 RETURNING *", now, id)[0] ?? null;
  }

  /** Marks probes disconnected for longer than ABANDON_AFTER_S as Abandoned (status 3); returns how many. */
  abandon(now = Math.floor(Date.now() / 1000)): number {
    return this.sql("UPDATE probes SET status_id = 3, status_since = ? WHERE status_id = 2 AND status_since <= ? RETURNING id", now, now - ABANDON_AFTER_S).length;
  }

  private nonceKeyCache: Promise<CryptoKey> | null = null;
  /** The key registration nonces are made with: made once, kept in this registry's storage. */
  private nonceKey(): Promise<CryptoKey> {
    return this.nonceKeyCache ??= (() => {
      let row = this.sql<{ value: ArrayBuffer }>("SELECT value FROM secrets WHERE name = 'nonce_key'")[0];
      if (!row) {
        this.sql("INSERT INTO secrets (name, value) VALUES ('nonce_key', ?)", crypto.getRandomValues(new Uint8Array(32)).buffer);
        row = this.sql<{ value: ArrayBuffer }>("SELECT value FROM secrets WHERE name = 'nonce_key'")[0]!;
      }
      return importNonceKey(new Uint8Array(row.value));
    })();
  }

  /**
   * Step 1 of registration: a fresh single-use nonce for this probe. Issuing one writes nothing and leaves every
   * earlier one valid until it expires, so asking for challenges in a probe's name cannot lock it out (nonces.ts).
   * `now` is for tests only.
   */
  async challenge(probeId: number, now = Date.now()): Promise<{ ok: true; nonce: string; expires: number } | Refusal> {
    const probe = this.probe(probeId);
    if (!probe) return { ok: false, reason: `unknown probe ${probeId}` };
    if (probe.disabled) return { ok: false, reason: `probe ${probeId} is disabled` };
    const expires = now + CHALLENGE_TTL_MS;
    return { ok: true, nonce: await issueNonce(await this.nonceKey(), probeId, expires), expires };
  }

  /**
   * Step 2: the probe's proof is a compact EdDSA JWS over {"probe_id","nonce"} signed with its enrolled key, for a
   * nonce this registry issued to this probe and that has not expired; it is marked used (until it expires) in the
   * same step, so a proof works once. Then Atlas's limits on probe farming: at most PROBES_PER_ADDRESS other
   * probes connected from the same public IPv4 address, and PROBES_PER_PREFIX from its /24 (private and loopback
   * addresses, as in a lab or locally, are not limited).
   */
  async register(probeId: number, proof: string, address: string | null = null): Promise<{ ok: true; probe: ProbeRecord } | Refusal> {
    const probe = this.probe(probeId);
    if (!probe) return { ok: false, reason: `unknown probe ${probeId}` };
    if (probe.disabled) return { ok: false, reason: `probe ${probeId} is disabled` };
    let payload: { probe_id?: unknown; nonce?: unknown };
    try {
      const key = await importJWK({ kty: "OKP", crv: "Ed25519", x: probe.public_key }, "EdDSA");
      const verified = await compactVerify(proof, key, { algorithms: ["EdDSA", "Ed25519"] });
      payload = JSON.parse(new TextDecoder().decode(verified.payload));
    } catch {
      return { ok: false, reason: "proof signature does not verify with the probe's enrolled key" };
    }
    if (payload.probe_id !== probeId) return { ok: false, reason: "proof is for another probe" };
    const now = Date.now();
    const nonce = await checkNonce(await this.nonceKey(), probeId, payload.nonce, now);
    if (!nonce.ok) return { ok: false, reason: nonce.reason };
    // After the awaits, in one synchronous step: another registration may have used the nonce meanwhile.
    this.sql("DELETE FROM used_nonces WHERE expires < ?", now);
    if (!this.sql("INSERT INTO used_nonces (nonce, expires) VALUES (?, ?) ON CONFLICT (nonce) DO NOTHING RETURNING nonce", payload.nonce as string, nonce.expires).length) {
      return { ok: false, reason: "challenge already answered (replayed proof)" };
    }
    if (address && isIPv4(address) && !isNonPublicAddress(address)) {
      const same = this.sql<{ n: number }>("SELECT COUNT(*) AS n FROM probes WHERE status_id = 1 AND address_v4 = ? AND id != ?", address, probeId)[0]!.n;
      if (same >= PROBES_PER_ADDRESS) return { ok: false, reason: `${same} probes are already connected from ${address}: at most ${PROBES_PER_ADDRESS} per address` };
      const prefix = address.split(".").slice(0, 3).join(".") + ".";
      const near = this.sql<{ n: number }>("SELECT COUNT(*) AS n FROM probes WHERE status_id = 1 AND address_v4 LIKE ? AND id != ?", `${prefix}%`, probeId)[0]!.n;
      if (near >= PROBES_PER_PREFIX) return { ok: false, reason: `${near} probes are already connected from ${prefix}0/24: at most ${PROBES_PER_PREFIX} per /24` };
    }
    return { ok: true, probe };
  }

  /**
   * A controller tells us, in the order they happened, which of its probes connected or disconnected (presence.ts
   * sends them in batches: a reconnect storm is a few calls a second, not one per probe), and how loaded it now is.
   */
  probeSessions(events: SessionEvent[], load: { shard: string; connected: number; capacity: number }): void {
    let payable = false;
    this.ctx.storage.transactionSync(() => {
      for (const e of events) payable = this.session(load.shard, e) || payable;
      this.reportLoad(load.shard, load.connected, load.capacity);
    });
    if (payable) void this.armPayout();
  }

  /** One probe's connection or disconnection; true if it may start or end paid uptime. */
  private session(shard: string, e: SessionEvent): boolean {
    const p = this.probe(e.probe_id);
    if (!p) return false;
    if (e.event === "connected") {
      // A reconnect while still counted as connected first accrues the session it replaces.
      this.sql(
        `UPDATE probes SET unpaid_uptime = unpaid_uptime + CASE WHEN status_id = 1 AND accrued_until IS NOT NULL THEN MAX(0, ? - accrued_until) ELSE 0 END,
           status_id = 1, status_since = ?, last_connected = ?, first_connected = COALESCE(first_connected, ?),
           address_v4 = COALESCE(?, address_v4), shard = ?, accrued_until = ? WHERE id = ?`,
        e.at, e.at, e.at, e.at, e.address && !e.address.includes(":") ? e.address : null, shard, e.at, e.probe_id);
      return p.owner !== null;
    }
    if (p.shard !== shard || p.status_id !== 1) return false;  // it connected elsewhere since
    this.sql(`UPDATE probes SET status_id = 2, status_since = ?, total_uptime = total_uptime + MAX(0, ? - status_since),
                unpaid_uptime = unpaid_uptime + MAX(0, ? - COALESCE(accrued_until, ?)), accrued_until = NULL WHERE id = ?`,
      e.at, e.at, e.at, e.at, e.probe_id);
    return true;
  }

  /**
   * Pays probe owners for uptime: accrues connected sessions up to `now`, turns whole minutes into payouts (each
   * written with its own request id in the same transaction), then credits every payout not yet credited and
   * deletes it. A payout whose credit fails stays and is retried at the next run: each is credited exactly once.
   */
  async payout(now = Math.floor(Date.now() / 1000)): Promise<{ credited: number; pending: number }> {
    this.ctx.storage.transactionSync(() => {
      this.sql("UPDATE probes SET unpaid_uptime = unpaid_uptime + MAX(0, ? - accrued_until), accrued_until = ? WHERE status_id = 1 AND accrued_until IS NOT NULL AND owner IS NOT NULL", now, now);
      for (const p of this.sql<{ id: number; owner: string; unpaid_uptime: number }>("SELECT id, owner, unpaid_uptime FROM probes WHERE owner IS NOT NULL AND unpaid_uptime >= 60")) {
        const minutes = Math.floor(p.unpaid_uptime / 60);
        this.sql("UPDATE probes SET unpaid_uptime = unpaid_uptime - ? WHERE id = ?", minutes * 60, p.id);
        this.sql("INSERT INTO payouts (request_id, owner, probe_id, credits) VALUES (?, ?, ?, ?)",
          `uptime:${p.id}:${now}`, p.owner, p.id, minutes * CREDITS_PER_MINUTE);
      }
    });
    let credited = 0;
    for (const p of this.sql<{ request_id: string; owner: string; probe_id: number; credits: number }>("SELECT * FROM payouts")) {
      try {
        const results = p.request_id.startsWith("results:");
        const out = await this.env.LEDGER.getByName(p.owner).credit(p.request_id, p.credits, results ? "probe_results" : "probe_uptime",
          `probe ${p.probe_id}${results ? ": share of its results" : ""}`);
        if (out.ok) {
          this.sql("DELETE FROM payouts WHERE request_id = ?", p.request_id);
          credited += p.credits;
        }
      } catch (e) {
        console.error(`registry: paying ${p.owner} for probe ${p.probe_id} failed, will retry: ${String(e)}`);
      }
    }
    return { credited, pending: this.sql<{ n: number }>("SELECT COUNT(*) AS n FROM payouts")[0]!.n };
  }

  /**
   * Hosts' shares of their probes' results, from a controller (each payout under its own request id): queued with
   * the uptime payouts and credited to the probes' owners. A probe without an owner earns nobody anything.
   */
  async resultShares(payouts: { request_id: string; probe_id: number; credits: number }[]): Promise<void> {
    this.ctx.storage.transactionSync(() => {
      for (const p of payouts) {
        const owner = this.probe(p.probe_id)?.owner;
        if (owner && p.credits > 0) {
          this.sql("INSERT OR IGNORE INTO payouts (request_id, owner, probe_id, credits) VALUES (?, ?, ?, ?)", p.request_id, owner, p.probe_id, p.credits);
        }
      }
    });
    await this.payout();
  }

  override async alarm(): Promise<void> {
    this.abandon();
    await this.payout();
    await this.armPayout(true);
  }

  /** Keeps the hourly alarm set while an owned probe is connected, a payout waits, or a probe may be abandoned. */
  private async armPayout(rearm = false): Promise<void> {
    // The alarm first: counting is a scan of every probe, and every connection in a reconnect storm comes here.
    if (!rearm && (await this.ctx.storage.getAlarm()) !== null) return;
    const busy = this.sql<{ n: number }>(`SELECT (SELECT COUNT(*) FROM probes WHERE (owner IS NOT NULL AND (status_id = 1 OR unpaid_uptime > 0)) OR status_id = 2)
                                             + (SELECT COUNT(*) FROM payouts) AS n`)[0]!.n;
    if (busy) await this.ctx.storage.setAlarm(Date.now() + PAYOUT_INTERVAL_S * 1000);
  }

  reportLoad(shard: string, connected: number, capacity: number): void {
    this.sql("INSERT OR REPLACE INTO shards (name, connected, capacity, updated) VALUES (?, ?, ?, ?)", shard, connected, capacity, Date.now());
  }

  shardLoads(): Record<string, { connected: number; capacity: number; full: boolean }> {
    const out: Record<string, { connected: number; capacity: number; full: boolean }> = {};
    for (const s of this.sql<{ name: string; connected: number; capacity: number }>("SELECT * FROM shards")) {
      out[s.name] = { connected: s.connected, capacity: s.capacity, full: s.connected >= s.capacity };
    }
    return out;
  }

  probe(id: number): ProbeRecord | null {
    return this.sql<ProbeRecord>("SELECT * FROM probes WHERE id = ?", id)[0] ?? null;
  }

  /** Every tag probes carry (the operator's and Atlas's system tags), with how many carry it, by slug. */
  probeTags(): { slug: string; system: boolean; probes: number }[] {
    return this.sql<{ slug: string; system: number; probes: number }>(
      `SELECT value AS slug, 0 AS system, COUNT(*) AS probes FROM probes, json_each(probes.tags) GROUP BY value
       UNION ALL SELECT value, 1, COUNT(*) FROM probes, json_each(probes.system_tags) GROUP BY value ORDER BY 1`)
      .map((t) => ({ slug: t.slug, system: t.system === 1, probes: t.probes }));
  }

  /** A controller's word on a probe's system tags and its runs of working built-ins (sent when they change). */
  setSystemTags(probeId: number, tags: string[], works: Works = {}): void {
    this.sql("UPDATE probes SET system_tags = ?, works = ? WHERE id = ?", JSON.stringify(tags), JSON.stringify(works), probeId);
  }

  listProbes(f: ProbeFilter, offset: number, limit: number): { count: number; probes: ProbeRecord[] } {
    return this.probeRows<ProbeRecord>("*", f, offset, limit);
  }

  /** Every probe the filter matches as a map point: [id, longitude, latitude, status id, asn_v4, country_code]. */
  probePoints(f: ProbeFilter): [number, number | null, number | null, number, number | null, string | null][] {
    type Point = { id: number; longitude: number | null; latitude: number | null; status_id: number; asn_v4: number | null; country_code: string | null };
    return this.probeRows<Point>("id, longitude, latitude, status_id, asn_v4, country_code", f, 0, 1_000_000).probes
      .map((p) => [p.id, p.longitude, p.latitude, p.status_id, p.asn_v4, p.country_code]);
  }

  /** The columns (a fixed list from this file, never a request's text) of the probes a filter matches, in its order. */
  private probeRows<T extends { latitude: number | null; longitude: number | null }>(columns: string, f: ProbeFilter, offset: number, limit: number): { count: number; probes: T[] } {
    const where = new Where().in("id", f.ids).eq("country_code", f.country_code?.toUpperCase()).eq("asn_v4", f.asn_v4).eq("status_id", f.status);
    for (const tag of f.tags ?? []) {
      where.raw("EXISTS (SELECT 1 FROM json_each(probes.tags) WHERE value = ?) OR EXISTS (SELECT 1 FROM json_each(probes.system_tags) WHERE value = ?)", tag, tag);
    }
    where.eq("prefix_v4", f.prefix_v4).eq("owner", f.owner);
    for (const c of f.coordinates ?? []) where.compare(c.field === "latitude" ? "latitude" : "longitude", c.op, c.value);
    // Sort fields come from a fixed list (workers/api/probes.ts), never from the request's text.
    const column = ({ id: "id", first_connected: "first_connected", last_connected: "last_connected", status_since: "status_since" } as Record<string, string>)[f.sort?.field ?? "id"] ?? "id";
    const order = `${column} ${f.sort?.desc ? "DESC" : "ASC"}, id`;
    const [clause, binds] = [String(where), where.binds];
    if (f.near) {
      // Within a radius: a bounding box in SQL, the exact great-circle distance here (SQLite has no trigonometry).
      const { latitude, longitude, radius_km } = f.near;
      const dLat = radius_km / 111.2, dLon = radius_km / Math.max(1e-6, 111.2 * Math.cos((latitude * Math.PI) / 180));
      const box = dLon >= 180 ? [] : [longitude - dLon, longitude + dLon];
      const near = this.sql<T>(`SELECT ${columns} FROM probes ${clause || "WHERE 1"} AND latitude BETWEEN ? AND ?${box.length ? " AND longitude BETWEEN ? AND ?" : ""} ORDER BY ${order}`,
        ...binds, latitude - dLat, latitude + dLat, ...box).filter((p) => distanceKm([latitude, longitude], [p.latitude!, p.longitude!]) <= radius_km);
      return { count: near.length, probes: near.slice(offset, offset + limit) };
    }
    const count = this.sql<{ n: number }>(`SELECT COUNT(*) AS n FROM probes ${clause}`, ...binds)[0]!.n;
    const probes = this.sql<T>(`SELECT ${columns} FROM probes ${clause} ORDER BY ${order} LIMIT ? OFFSET ?`, ...binds, limit, offset);
    return { count, probes };
  }

  addKey(hash: string, label: string, account?: string, o: { grants?: Grant[]; valid_from?: number | null; valid_to?: number | null } = {}): KeyRecord {
    const owner = account ?? accountOfHash(hash);
    this.sql(`INSERT OR REPLACE INTO api_keys (hash, label, enabled, created, account, uuid, grants, valid_from, valid_to)
              VALUES (?, ?, 1, ?, ?, ?, ?, ?, ?)`,
      hash, label, Date.now(), owner, crypto.randomUUID(), JSON.stringify(o.grants ?? GRANTS), o.valid_from ?? null, o.valid_to ?? null);
    return this.keys(owner).find((k) => k.uuid === this.sql<{ uuid: string }>("SELECT uuid FROM api_keys WHERE hash = ?", hash)[0]!.uuid)!;
  }

  /**
   * The account and grants of a key that is enabled and within its validity window, or why it is not usable.
   */
  keyAccount(hash: string): { account: string; grants: Grant[]; valid_from: number | null; valid_to: number | null } | { refused: string } {
    const k = this.sql<{ account: string; enabled: number; grants: string; valid_from: number | null; valid_to: number | null }>(
      "SELECT account, enabled, grants, valid_from, valid_to FROM api_keys WHERE hash = ?", hash)[0];
    const now = Math.floor(Date.now() / 1000);
    if (!k || !k.enabled) return { refused: "The provided API key does not exist or is disabled." };
    if (k.valid_from !== null && now < k.valid_from) return { refused: `The provided API key is valid only from ${new Date(k.valid_from * 1000).toISOString()}.` };
    if (k.valid_to !== null && now >= k.valid_to) return { refused: `The provided API key expired at ${new Date(k.valid_to * 1000).toISOString()}.` };
    return { account: k.account, grants: JSON.parse(k.grants) as Grant[], valid_from: k.valid_from, valid_to: k.valid_to };
  }

  /**
   * Binds an operator grant's request id to its account and amount: "new" the first time, "same" for a retry of
   * the same grant, "conflict" when the id was used to grant something else (another account or amount).
   */
  bindGrant(requestId: string, account: string, credits: number): "new" | "same" | "conflict" {
    const seen = this.sql<{ account: string; credits: number }>("SELECT account, credits FROM grant_ids WHERE request_id = ?", requestId)[0];
    if (seen) return seen.account === account && seen.credits === credits ? "same" : "conflict";
    this.sql("INSERT INTO grant_ids (request_id, account, credits) VALUES (?, ?, ?)", requestId, account, credits);
    return "new";
  }

  /** Whether anybody holds the account: a key of it exists, or it hosts a probe. */
  accountExists(account: string): boolean {
    return this.sql("SELECT 1 FROM api_keys WHERE account = ? UNION ALL SELECT 1 FROM probes WHERE owner = ? LIMIT 1", account, account).length > 0;
  }

  /** An account's keys (never their secrets). */
  keys(account: string): KeyRecord[] {
    return this.sql<{ uuid: string; label: string; account: string; enabled: number; grants: string; valid_from: number | null; valid_to: number | null; created: number }>(
      "SELECT uuid, label, account, enabled, grants, valid_from, valid_to, created FROM api_keys WHERE account = ? ORDER BY created", account)
      .map((k) => ({ ...k, enabled: k.enabled === 1, grants: JSON.parse(k.grants) as Grant[] }));
  }

  /** Enables or disables one of an account's keys, or renames it; null if the account has no such key. */
  updateKey(account: string, uuid: string, change: { enabled?: boolean; label?: string }): KeyRecord | null {
    const found = this.sql("UPDATE api_keys SET enabled = COALESCE(?, enabled), label = COALESCE(?, label) WHERE account = ? AND uuid = ? RETURNING uuid",
      change.enabled === undefined ? null : change.enabled ? 1 : 0, change.label ?? null, account, uuid);
    return found.length ? this.keys(account).find((k) => k.uuid === uuid) ?? null : null;
  }

  /** Deletes one of an account's keys for good (its holder is refused from then on); whether it was there. */
  deleteKey(account: string, uuid: string): boolean {
    return this.sql("DELETE FROM api_keys WHERE account = ? AND uuid = ? RETURNING uuid", account, uuid).length > 0;
  }
}
