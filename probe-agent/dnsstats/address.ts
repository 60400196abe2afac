// Addresses as the collector holds them (IPv4 as a 32-bit number, IPv6 as 32 hex digits) in their usual text form,
// IPv6 compressed as RFC 5952 says (ipaddr.js). IPv6 texts are cached: a server's or a /96's text is asked for on
// every query.
import ipaddr from "ipaddr.js";

export function v4Text(n: number): string {
  return `${n >>> 24}.${(n >>> 16) & 255}.${(n >>> 8) & 255}.${n & 255}`;
}

const cache = new Map<string, string>();
export function v6Text(hex: string): string {
  let t = cache.get(hex);
  if (t === undefined) {
    const bytes = Array.from({ length: 16 }, (_, i) => parseInt(hex.slice(i * 2, i * 2 + 2), 16));
    t = ipaddr.fromByteArray(bytes).toString();
    if (cache.size >= 4096) cache.clear();
    cache.set(hex, t);
  }
  return t;
}

/** The address's bytes, its first `prefixBits` only (C-DNS stores a client prefix as its leading bytes). */
export function addressBytes(a: number | string, prefixBits?: number): Uint8Array {
  const full = typeof a === "number"
    ? new Uint8Array([a >>> 24, (a >>> 16) & 255, (a >>> 8) & 255, a & 255])
    : Uint8Array.from({ length: 16 }, (_, i) => parseInt(a.slice(i * 2, i * 2 + 2), 16));
  if (prefixBits === undefined || prefixBits >= full.length * 8) return full;
  const out = full.slice(0, Math.ceil(prefixBits / 8));
  if (prefixBits % 8) out[out.length - 1]! &= 0xff << (8 - (prefixBits % 8));
  return out;
}
