// The console speaks the public Atlas API only, as any client would. The API key a user enters is kept for the tab
// (sessionStorage: gone when the tab closes) and sent in the Authorization header, never in a URL.
import { onLeave } from "./route.ts";

const KEY = "vantage.api-key";

export function apiKey(): string | null {
  return sessionStorage.getItem(KEY);
}

export function setApiKey(key: string | null): void {
  if (key) sessionStorage.setItem(KEY, key);
  else sessionStorage.removeItem(KEY);
}

/** One of an Atlas error's items: the field (a JSON pointer into the body) or parameter it names, and what is wrong. */
export type ErrorItem = { source: { pointer?: string; parameter?: string }; detail: string };

/** An API error as Atlas reports it: the status and its detail, and the fields it names. */
export class ApiError extends Error {
  readonly status: number;
  readonly errors: ErrorItem[];
  constructor(status: number, detail: string, errors: ErrorItem[] = []) {
    super(detail);
    this.status = status;
    this.errors = errors;
  }
}

export async function api<T>(path: string, init: RequestInit = {}): Promise<T> {
  const headers = new Headers(init.headers);
  headers.set("Accept", "application/json");
  const key = apiKey();
  if (key) headers.set("Authorization", `Key ${key}`);
  const res = await fetch(path, { ...init, headers });
  if (res.status === 204) return null as T;
  const body = await res.json().catch(() => null) as { error?: { detail?: string; errors?: ErrorItem[] } } | null;
  if (!res.ok) throw new ApiError(res.status, body?.error?.detail ?? `HTTP ${res.status}`, Array.isArray(body?.error?.errors) ? body.error.errors : []);
  return body as T;
}

/**
 * Every page of an Atlas list, up to `limit` items: the first page says how many there are, and the rest are asked
 * for four at a time (one after another, 15,000 probes in 30 pages took seconds: bench:web), then put in order.
 */
export async function allPages<T>(path: string, limit = 100_000, pageSize = 500): Promise<T[]> {
  const url = (page: number) => {
    const u = new URL(path, location.href);
    u.searchParams.set("page_size", String(pageSize));
    u.searchParams.set("page", String(page));
    return u.pathname + u.search;
  };
  const first: { count: number; results: T[] } = await api(url(1));
  const pages = Math.min(Math.ceil(first.count / pageSize), Math.ceil(limit / pageSize));
  const rest: T[][] = [];
  let next = 2;
  await Promise.all(Array.from({ length: 4 }, async () => {
    while (next <= pages) {
      const p = next++;
      rest[p - 2] = (await api<{ results: T[] }>(url(p))).results;
    }
  }));
  return [...first.results, ...rest.flat()].slice(0, limit);
}

/**
 * A subscription to the result stream (RIPE Atlas's protocol over a WebSocket to the edge itself), closed when the
 * view that opened it is left; `on` gets each [event, payload] frame, `atlas_subscribed` included.
 */
export function subscribe(subscription: Record<string, unknown>, on: (event: string, payload: unknown) => void): void {
  const stream = new WebSocket(`${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/stream/`);
  onLeave(() => stream.close(1000, "view closed"));
  stream.addEventListener("open", () => stream.send(JSON.stringify(["atlas_subscribe", subscription])));
  stream.addEventListener("message", (e) => {
    const [event, payload] = JSON.parse(String(e.data)) as [string, unknown];
    on(event, payload);
  });
  stream.addEventListener("close", () => on("closed", null));
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
