// Atlas list pagination: {"count","next","previous","results"}, `page` from 1, `page_size` 50 by default, ≤ 500.
import { intParam } from "./errors.ts";

export function pageOf(url: URL): { page: number; size: number; offset: number; limit: number } {
  const page = intParam(url, "page", 1, 1_000_000) ?? 1;
  const size = Math.min(intParam(url, "page_size", 1, 1_000_000) ?? 50, 500);
  return { page, size, offset: (page - 1) * size, limit: size };
}

export function page<T>(url: URL, count: number, results: T[]): { count: number; next: string | null; previous: string | null; results: T[] } {
  const { page, size } = pageOf(url);
  const link = (p: number) => {
    const u = new URL(url);
    u.searchParams.set("page", String(p));
    u.searchParams.set("page_size", String(size));
    return u.toString();
  };
  return { count, next: page * size < count ? link(page + 1) : null, previous: page > 1 ? link(page - 1) : null, results };
}
