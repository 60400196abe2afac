// Writes small captures for the classifier tests (classic pcap, Ethernet): the repo makes its own fixtures.
import { writeFileSync } from "node:fs";

export type Frame = { ts: number; bytes: Buffer; caplen?: number };

function checksum(b: Buffer): number {
  let sum = 0;
  for (let i = 0; i + 1 < b.length; i += 2) sum += b.readUInt16BE(i);
  if (b.length & 1) sum += b[b.length - 1]! << 8;
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  return ~sum & 0xffff;
}

const ip4 = (a: string) => Buffer.from(a.split(".").map(Number));

export type L4 = { proto: "tcp" | "udp"; src: string; sport: number; dst: string; dport: number; flags?: number; payload?: Buffer; vlan?: number };

/** An Ethernet frame carrying IPv4 + TCP/UDP. */
export function ipv4Frame(p: L4): Buffer {
  const payload = p.payload ?? Buffer.alloc(0);
  const l4 = Buffer.alloc(p.proto === "tcp" ? 20 : 8);
  l4.writeUInt16BE(p.sport, 0);
  l4.writeUInt16BE(p.dport, 2);
  if (p.proto === "tcp") {
    l4[12] = 5 << 4;
    l4[13] = p.flags ?? 0x18;
    l4.writeUInt16BE(65535, 14);
  } else {
    l4.writeUInt16BE(8 + payload.length, 4);
  }
  const ip = Buffer.alloc(20);
  ip[0] = 0x45;
  ip.writeUInt16BE(20 + l4.length + payload.length, 2);
  ip[8] = 64;
  ip[9] = p.proto === "tcp" ? 6 : 17;
  ip4(p.src).copy(ip, 12);
  ip4(p.dst).copy(ip, 16);
  ip.writeUInt16BE(checksum(ip), 10);
  const vlan = p.vlan === undefined ? Buffer.alloc(0) : Buffer.from([0x81, 0x00, (p.vlan >> 8) & 0x0f, p.vlan & 0xff]);
  const eth = Buffer.concat([Buffer.from("020000000002020000000001", "hex"), vlan, Buffer.from([0x08, 0x00])]);
  return Buffer.concat([eth, ip, l4, payload]);
}

/** An Ethernet frame carrying IPv6 + TCP. */
export function ipv6TcpFrame(src: string, sport: number, dst: string, dport: number, flags = 0x18, payload = Buffer.alloc(0)): Buffer {
  const tcp = Buffer.alloc(20);
  tcp.writeUInt16BE(sport, 0);
  tcp.writeUInt16BE(dport, 2);
  tcp[12] = 5 << 4;
  tcp[13] = flags;
  const ip = Buffer.alloc(40);
  ip[0] = 0x60;
  ip.writeUInt16BE(20 + payload.length, 4);
  ip[6] = 6;
  ip[7] = 64;
  const six = (a: string) => { const [h, t] = a.split("::") as [string, string]; const hs = h ? h.split(":") : []; const ts = t ? t.split(":") : [];
    const all = [...hs, ...Array(8 - hs.length - ts.length).fill("0"), ...ts]; const b = Buffer.alloc(16); all.forEach((g, i) => b.writeUInt16BE(parseInt(g, 16), i * 2)); return b; };
  six(src).copy(ip, 8);
  six(dst).copy(ip, 24);
  return Buffer.concat([Buffer.from("020000000002020000000001", "hex"), Buffer.from([0x86, 0xdd]), ip, tcp, payload]);
}

export function writePcap(path: string, frames: Frame[], linktype = 1): void {
  const header = Buffer.alloc(24);
  header.writeUInt32LE(0xa1b2c3d4, 0);
  header.writeUInt16LE(2, 4);
  header.writeUInt16LE(4, 6);
  header.writeUInt32LE(65535, 16);
  header.writeUInt32LE(linktype, 20);
  const records = frames.map((f) => {
    const caplen = f.caplen ?? f.bytes.length;
    const h = Buffer.alloc(16);
    h.writeUInt32LE(Math.floor(f.ts), 0);
    h.writeUInt32LE(Math.round((f.ts % 1) * 1e6), 4);
    h.writeUInt32LE(caplen, 8);
    h.writeUInt32LE(f.bytes.length, 12);
    return Buffer.concat([h, f.bytes.subarray(0, caplen)]);
  });
  writeFileSync(path, Buffer.concat([header, ...records]));
}
