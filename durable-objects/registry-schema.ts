// The registry's SQLite schema, as the migrations that made it (sql.ts runs them once each, in order), and the
// records it keeps: probes (with their status names), enrollments, API keys and what they may do, and the filter
// probe listings take. What each table is for is said where it is made.

export const MIGRATIONS = [
  `CREATE TABLE probes (
     id INTEGER PRIMARY KEY AUTOINCREMENT,
     public_key TEXT NOT NULL UNIQUE,
     description TEXT NOT NULL DEFAULT '',
     country_code TEXT, asn_v4 INTEGER, prefix_v4 TEXT, latitude REAL, longitude REAL,
     address_v4 TEXT, status_id INTEGER NOT NULL DEFAULT 0, status_since INTEGER NOT NULL,
     first_connected INTEGER, last_connected INTEGER, total_uptime INTEGER NOT NULL DEFAULT 0,
     shard TEXT, disabled INTEGER NOT NULL DEFAULT 0, enrolled_at INTEGER NOT NULL);
   -- Software probe ids start above 1,000,000 as on RIPE Atlas.
   INSERT INTO sqlite_sequence (name, seq) VALUES ('probes', 1000000);
   CREATE TABLE challenges (probe_id INTEGER PRIMARY KEY, nonce TEXT NOT NULL, expires INTEGER NOT NULL, used INTEGER NOT NULL DEFAULT 0);
   CREATE TABLE shards (name TEXT PRIMARY KEY, connected INTEGER NOT NULL, capacity INTEGER NOT NULL, updated INTEGER NOT NULL);
   CREATE TABLE api_keys (hash TEXT PRIMARY KEY, label TEXT NOT NULL, enabled INTEGER NOT NULL DEFAULT 1, created INTEGER NOT NULL);`,
  // Accounts own keys (and measurements, and credits in their Ledger). A key imported without one gets its own.
  `ALTER TABLE api_keys ADD COLUMN account TEXT;
   UPDATE api_keys SET account = 'acct-' || substr(hash, 1, 16) WHERE account IS NULL;`,
  // A probe's owner earns credits for its uptime: seconds accrued and not yet paid, the time its current session was
  // accrued up to, and payouts written before they are credited to the owner's ledger (each under its own id).
  `ALTER TABLE probes ADD COLUMN owner TEXT;
   ALTER TABLE probes ADD COLUMN unpaid_uptime INTEGER NOT NULL DEFAULT 0;
   ALTER TABLE probes ADD COLUMN accrued_until INTEGER;
   CREATE TABLE payouts (request_id TEXT PRIMARY KEY, owner TEXT NOT NULL, probe_id INTEGER NOT NULL, credits INTEGER NOT NULL);`,
  // Keys have a public id, grants (what they may do) and a validity window; keys made before get every grant.
  `ALTER TABLE api_keys ADD COLUMN uuid TEXT;
   ALTER TABLE api_keys ADD COLUMN grants TEXT NOT NULL DEFAULT '["create_measurements","stop_measurements","get_credits","transfer_credits","manage_keys"]';
   ALTER TABLE api_keys ADD COLUMN valid_from INTEGER;
   ALTER TABLE api_keys ADD COLUMN valid_to INTEGER;
   UPDATE api_keys SET uuid = 'key-' || substr(hash, 1, 24) WHERE uuid IS NULL;
   CREATE UNIQUE INDEX api_keys_uuid ON api_keys (uuid);`,
  // Probe tags (as Atlas's user tags, set by the operator), matched by measurement sources' include/exclude.
  `ALTER TABLE probes ADD COLUMN tags TEXT NOT NULL DEFAULT '[]';`,
  // Registration nonces are self-certifying (nonces.ts): the registry keeps the key they are made with and the ones
  // answered, until they expire, instead of one outstanding nonce per probe.
  `DROP TABLE challenges;
   CREATE TABLE used_nonces (nonce TEXT PRIMARY KEY, expires INTEGER NOT NULL);
   CREATE TABLE secrets (name TEXT PRIMARY KEY, value BLOB NOT NULL);`,
  // Operator grants' request ids, bound to the account and amount they granted (a ledger only sees its own ids).
  `CREATE TABLE grant_ids (request_id TEXT PRIMARY KEY, account TEXT NOT NULL, credits INTEGER NOT NULL);`,
  // Atlas's system tags, derived by the probe's controller from its built-ins and address (system-tags.ts).
  `ALTER TABLE probes ADD COLUMN system_tags TEXT NOT NULL DEFAULT '[]';`,
  // Per family, the run of answered built-in anchor pings the stability tags count (system-tags.ts Works).
  `ALTER TABLE probes ADD COLUMN works TEXT NOT NULL DEFAULT '{}';`,
];

/** What a key may do. */
export const GRANTS = ["create_measurements", "stop_measurements", "get_credits", "transfer_credits", "manage_keys"] as const;
export type Grant = (typeof GRANTS)[number];
export type KeyRecord = { uuid: string; label: string; account: string; enabled: boolean; grants: Grant[]; valid_from: number | null; valid_to: number | null; created: number };

export const PROBE_STATUS: Record<number, string> = { 0: "Never Connected", 1: "Connected", 2: "Disconnected", 3: "Abandoned", 4: "Written Off" };

export type ProbeRecord = {
  id: number;
  public_key: string;
  description: string;
  country_code: string | null;
  asn_v4: number | null;
  prefix_v4: string | null;
  latitude: number | null;
  longitude: number | null;
  address_v4: string | null;
  status_id: number;
  status_since: number;
  first_connected: number | null;
  last_connected: number | null;
  total_uptime: number;
  shard: string | null;
  disabled: number;
  owner: string | null;
  /** JSON array of the probe's tags (the operator's). */
  tags: string;
  /** JSON array of its Atlas system tags (system-tags.ts), as its controller last reported them. */
  system_tags: string;
  works: string;
};

export type Enrollment = {
  public_key: string;
  /** The account that hosts the probe and earns its credits. */
  owner?: string | null;
  tags?: string[];
  description?: string;
  country_code?: string | null;
  asn_v4?: number | null;
  prefix_v4?: string | null;
  latitude?: number | null;
  longitude?: number | null;
};

export type Refusal = { ok: false; reason: string };

export type ProbeFilter = {
  ids?: number[];
  country_code?: string;
  asn_v4?: number;
  status?: number;
  /** Probes with every one of these tags (the operator's or Atlas's system tags). */
  tags?: string[];
  prefix_v4?: string;
  /** Probes within `radius_km` of a point (great-circle distance from their recorded location). */
  near?: { latitude: number; longitude: number; radius_km: number };
  /** The account hosting them (`/probes/my/`). */
  owner?: string;
  /** Bounds on the recorded location (`latitude__gte=50`, …); operators from a fixed list. */
  coordinates?: { field: "latitude" | "longitude"; op: string; value: number }[];
  sort?: { field: string; desc: boolean };
};
