// The console speaks the public Atlas API only, as any client would. The API key a user enters is kept for the tab
// (sessionStorage: gone when the tab closes) and sent in the Authorization header, never in a URL.
const KEY = "vantage.api-key";

export function apiKey(): string | null {
  return sessionStorage.getItem(KEY);
}

export function setApiKey(key: string | null): void {
  if (key) sessionStorage.setItem(KEY, key);
  else sessionStorage.removeItem(KEY);
}

/** An API error as Atlas reports it: the status and its detail (and the field it names, when it names one). */
export class ApiError extends Error {
  readonly status: number;
  constructor(status: number, detail: string) {
    super(detail);
    this.status = status;
  }
}

export async function api<T>(path: string, init: RequestInit = {}): Promise<T> {
  const headers = new Headers(init.headers);
  headers.set("Accept", "application/json");
  const key = apiKey();
  if (key) headers.set("Authorization", `Key ${key}`);
  const res = await fetch(path, { ...init, headers });
  const body = await res.json().catch(() => null) as { error?: { detail?: string } } | null;
  if (!res.ok) throw new ApiError(res.status, body?.error?.detail ?? `HTTP ${res.status}`);
  return body as T;
}

/** Every page of an Atlas list (`next` links followed), up to `limit` items. */
export async function allPages<T>(path: string, limit = 100_000): Promise<T[]> {
  const out: T[] = [];
  let next: string | null = path;
  while (next && out.length < limit) {
    const page: { results: T[]; next: string | null } = await api(next);
    out.push(...page.results);
    // `next` is absolute (the API writes its own origin); only its path and query are followed.
    next = page.next ? (() => { const u = new URL(page.next, location.href); return u.pathname + u.search; })() : null;
  }
  return out.slice(0, limit);
}

/** A probe as the probes API returns it (the fields the console reads). */
export type Probe = {
  id: number;
  description: string;
  country_code: string | null;
  asn_v4: number | null;
  asn_v6: number | null;
  prefix_v4: string | null;
  address_v4: string | null;
  geometry: { type: "Point"; coordinates: [number, number] } | null;
  status: { id: number; name: string; since: string | null };
  first_connected: number | null;
  last_connected: number | null;
  total_uptime: number;
  tags: { name: string; slug: string }[];
  is_public: boolean;
};
