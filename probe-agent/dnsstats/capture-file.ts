// Capture files as a stream of packets: classic pcap (µs or ns timestamps, either byte order) and pcapng (the
// interfaces' link types and timestamp resolutions, enhanced and simple packet blocks), read in chunks so a capture
// of any size costs one chunk of memory. tcpdump and dnscap write pcap, tshark and dumpcap pcapng.
import { open } from "node:fs/promises";

/**
 * One packet: its capture time in µs since the epoch, its link type and where its bytes are (valid during the call
 * only). Offsets rather than a view: a Buffer view per packet was a tenth of the collector's time in allocation.
 */
export type PacketSink = (tsUs: number, linkType: number, buf: Uint8Array, off: number, len: number) => void;

const CHUNK = 1 << 20;

/** Reads every packet of a capture file, in order; throws an error naming the file and what is wrong with it. */
export async function readCaptureFile(path: string, sink: PacketSink): Promise<{ packets: number }> {
  const file = await open(path, "r");
  try {
    let buf = Buffer.alloc(CHUNK);
    let have = 0;
    let eof = false;
    const fill = async (need: number): Promise<boolean> => {
      if (need > buf.length) {
        const bigger = Buffer.alloc(Math.max(need, buf.length * 2));
        buf.copy(bigger, 0, 0, have);
        buf = bigger;
      }
      while (have < need && !eof) {
        const { bytesRead } = await file.read(buf, have, buf.length - have, null);
        if (bytesRead === 0) eof = true;
        have += bytesRead;
      }
      return have >= need;
    };
    if (!(await fill(4))) throw new Error(`${path}: not a capture file (shorter than its magic number)`);
    const magic = buf.readUInt32LE(0);
    const reader = magic === 0x0a0d0d0a ? new PcapngReader(path) : new PcapReader(path);
    let off = 0;
    for (;;) {
      const used = reader.parse(buf, off, have, sink);
      off += used;
      // Keep the unread tail and read on; a record longer than what is held grows the buffer.
      if (eof) {
        if (off < have) throw new Error(`${path}: the capture ends inside a record (${have - off} bytes left over): truncated file`);
        break;
      }
      buf.copy(buf, 0, off, have);
      have -= off;
      off = 0;
      await fill(Math.max(reader.needed, Math.min(buf.length, have + 1)));
    }
    return { packets: reader.packets };
  } finally {
    await file.close();
  }
}

interface Reader {
  /** Parses whole records from buf[off, end) and returns the bytes used; sets `needed` to what the next record needs. */
  parse(buf: Buffer, off: number, end: number, sink: PacketSink): number;
  needed: number;
  packets: number;
}

class PcapReader implements Reader {
  needed = 24;
  packets = 0;
  private header = false;
  private little = true;
  private nano = false;
  private linkType = 0;
  private readonly path: string;
  constructor(path: string) { this.path = path; }

  parse(buf: Buffer, start: number, end: number, sink: PacketSink): number {
    let off = start;
    if (!this.header) {
      if (end - off < 24) { this.needed = 24; return 0; }
      const m = buf.readUInt32LE(off);
      if (m === 0xa1b2c3d4 || m === 0xa1b23c4d) this.little = true;
      else if (m === 0xd4c3b2a1 || m === 0x4d3cb2a1) this.little = false;
      else throw new Error(`${this.path}: not a pcap or pcapng file (magic 0x${m.toString(16)})`);
      this.nano = m === 0xa1b23c4d || m === 0x4d3cb2a1;
      this.linkType = (this.little ? buf.readUInt32LE(off + 20) : buf.readUInt32BE(off + 20)) & 0xffff;
      this.header = true;
      off += 24;
    }
    const le = this.little;
    while (end - off >= 16) {
      const sec = le ? buf.readUInt32LE(off) : buf.readUInt32BE(off);
      const frac = le ? buf.readUInt32LE(off + 4) : buf.readUInt32BE(off + 4);
      const incl = le ? buf.readUInt32LE(off + 8) : buf.readUInt32BE(off + 8);
      if (incl > 262_144) throw new Error(`${this.path}: a record of ${incl} bytes at offset ${off}: corrupt file`);
      if (end - off < 16 + incl) { this.needed = 16 + incl; return off - start; }
      this.packets++;
      sink(sec * 1e6 + (this.nano ? Math.floor(frac / 1000) : frac), this.linkType, buf, off + 16, incl);
      off += 16 + incl;
    }
    this.needed = 16;
    return off - start;
  }
}

class PcapngReader implements Reader {
  needed = 12;
  packets = 0;
  private little = true;
  /** Per interface of the current section: link type and ticks per µs divisor (resolution). */
  private ifaces: { linkType: number; ticksPerSecond: number }[] = [];
  private readonly path: string;
  constructor(path: string) { this.path = path; }

  parse(buf: Buffer, start: number, end: number, sink: PacketSink): number {
    let off = start;
    while (end - off >= 12) {
      const type = buf.readUInt32LE(off);
      if (type === 0x0a0d0d0a) {
        const bom = buf.readUInt32LE(off + 8);
        if (bom === 0x1a2b3c4d) this.little = true;
        else if (bom === 0x4d3c2b1a) this.little = false;
        else throw new Error(`${this.path}: pcapng section header with a bad byte-order magic at offset ${off}`);
      }
      const le = this.little;
      const len = le ? buf.readUInt32LE(off + 4) : buf.readUInt32BE(off + 4);
      if (len < 12 || len % 4 !== 0 || len > 1 << 24) throw new Error(`${this.path}: pcapng block of ${len} bytes at offset ${off}: corrupt file`);
      if (end - off < len) { this.needed = len; return off - start; }
      const btype = le ? buf.readUInt32LE(off) : buf.readUInt32BE(off);
      if (btype === 0x0a0d0d0a) this.ifaces = [];
      else if (btype === 1) this.ifaces.push({ linkType: (le ? buf.readUInt16LE(off + 8) : buf.readUInt16BE(off + 8)), ticksPerSecond: idbResolution(buf, off, len, le) });
      else if (btype === 6) {
        const ifId = le ? buf.readUInt32LE(off + 8) : buf.readUInt32BE(off + 8);
        const iface = this.ifaces[ifId];
        if (!iface) throw new Error(`${this.path}: packet of interface ${ifId}, which the file never described`);
        const hi = le ? buf.readUInt32LE(off + 12) : buf.readUInt32BE(off + 12);
        const lo = le ? buf.readUInt32LE(off + 16) : buf.readUInt32BE(off + 16);
        const caplen = le ? buf.readUInt32LE(off + 20) : buf.readUInt32BE(off + 20);
        if (28 + caplen > len) throw new Error(`${this.path}: packet block at offset ${off} claims ${caplen} bytes in a ${len}-byte block`);
        const ticks = hi * 4294967296 + lo;
        const tsUs = iface.ticksPerSecond === 1e6 ? ticks : Math.floor(ticks / (iface.ticksPerSecond / 1e6));
        this.packets++;
        sink(tsUs, iface.linkType, buf, off + 28, caplen);
      } else if (btype === 3) {
        const iface = this.ifaces[0];
        if (!iface) throw new Error(`${this.path}: simple packet block before any interface description`);
        const orig = le ? buf.readUInt32LE(off + 8) : buf.readUInt32BE(off + 8);
        this.packets++;
        sink(0, iface.linkType, buf, off + 12, Math.min(orig, len - 16));
      }
      off += len;
    }
    this.needed = 12;
    return off - start;
  }
}

/** The if_tsresol option of an interface description block: ticks per second (default µs). */
function idbResolution(buf: Buffer, off: number, len: number, le: boolean): number {
  let p = off + 16;
  const stop = off + len - 4;
  while (p + 4 <= stop) {
    const code = le ? buf.readUInt16LE(p) : buf.readUInt16BE(p);
    const olen = le ? buf.readUInt16LE(p + 2) : buf.readUInt16BE(p + 2);
    if (code === 0) break;
    if (code === 9 && olen >= 1) {
      const v = buf[p + 4]!;
      return v & 0x80 ? 2 ** (v & 0x7f) : 10 ** (v & 0x7f);
    }
    p += 4 + ((olen + 3) & ~3);
  }
  return 1e6;
}
