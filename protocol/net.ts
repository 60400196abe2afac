// Address helpers shared by the edge and the agent: literal checks, non-public ranges, prefix syntax. Whether an
// address lies in a prefix, by its bits, is address-policy.ts (`inCidr`).
import { judgeAddress, parseAddress } from "./address-policy.ts";

const HOSTNAME = /^(?=.{1,253}$)([a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9])?)(\.[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9])?)*\.?$/i;
const IPV4 = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$/;

export function isIPv4(s: string): boolean {
  return IPV4.test(s);
}

export function isIPv6(s: string): boolean {
  if (!/^[0-9a-f:.]+$/i.test(s) || !s.includes(":")) return false;
  const double = s.split("::");
  if (double.length > 2) return false;
  const groups = (part: string) => (part === "" ? [] : part.split(":"));
  let parts = [...groups(double[0]!), ...(double.length === 2 ? groups(double[1]!) : [])];
  let width = 8;
  const last = parts[parts.length - 1];
  if (last !== undefined && last.includes(".")) {
    if (!isIPv4(last)) return false;
    parts = parts.slice(0, -1);
    width = 6;
  }
  if (!parts.every((g) => /^[0-9a-f]{1,4}$/i.test(g))) return false;
  return double.length === 2 ? parts.length < width : parts.length === width;
}

/** A target is a host name or an address in any spelling (judged by what it reaches: address-policy.ts). */
export function isTarget(s: string): boolean {
  return parseAddress(s) !== null || (HOSTNAME.test(s) && !/^[\d.]+$/.test(s));
}

/** Addresses no public measurement may aim at, by IANA's special-purpose registries (address-policy.ts). */
export function isNonPublicAddress(addr: string): boolean {
  return judgeAddress(addr)?.public === false;
}

function v6Groups(addr: string): number[] | null {
  if (!isIPv6(addr)) return null;
  let s = addr.toLowerCase();
  const v4 = s.match(/(\d+\.\d+\.\d+\.\d+)$/);
  if (v4) {
    const o = v4[1]!.split(".").map(Number);
    s = s.slice(0, -v4[1]!.length) + `${((o[0]! << 8) | o[1]!).toString(16)}:${((o[2]! << 8) | o[3]!).toString(16)}`;
  }
  const [head, tail] = s.split("::") as [string, string | undefined];
  const h = head ? head.split(":") : [];
  const t = tail ? tail.split(":") : [];
  const groups = tail === undefined ? h : [...h, ...Array(8 - h.length - t.length).fill("0"), ...t];
  return groups.map((g) => parseInt(g, 16));
}

/** The address as a big integer and its width in bits, or null if it is not an address. */
function toBits(addr: string): { value: bigint; bits: number } | null {
  if (isIPv4(addr)) return { value: addr.split(".").reduce((n, o) => (n << 8n) + BigInt(o), 0n), bits: 32 };
  const g = v6Groups(addr);
  return g ? { value: g.reduce((n, x) => (n << 16n) + BigInt(x), 0n), bits: 128 } : null;
}

/** Whether `cidr` is a valid prefix such as 192.0.2.0/24 or 2001:db8::/32. */
export function isCidr(cidr: string): boolean {
  const [net, len] = cidr.split("/");
  const b = net ? toBits(net) : null;
  return !!b && len !== undefined && /^\d{1,3}$/.test(len) && Number(len) <= b.bits;
}
