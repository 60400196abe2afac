// The sample of whole query/response pairs as C-DNS (RFC 8618): the blocks. Each holds up to `MAX_BLOCK_ITEMS`
// pairs and tables of what they share (addresses, class/type pairs, names, query/response signatures), which is
// where C-DNS gets its size (RFC 8618 App. C). A file's opening and end are in protocol/cdns-file.ts (the edge
// builds files of uploaded blocks too). CBOR by cbor-x; maps with integer keys as the RFC's CDDL numbers them.
import { cbor, type CdnsOptions } from "../../protocol/cdns-file.ts";
import { addressBytes } from "./address.ts";
import type { SampledPair } from "./collector.ts";

export { CDNS_END, cdnsHeader, type CdnsOptions, MAX_BLOCK_ITEMS } from "../../protocol/cdns-file.ts";
import { MAX_BLOCK_ITEMS } from "../../protocol/cdns-file.ts";

/** Builds blocks from sampled pairs; `take()` returns a full block's CBOR once `MAX_BLOCK_ITEMS` are in. */
export class CdnsBlock {
  private items: SampledPair[] = [];
  private readonly o: CdnsOptions;
  constructor(o: CdnsOptions) {
    this.o = o;
  }

  get size(): number {
    return this.items.length;
  }

  add(p: SampledPair): Uint8Array | null {
    this.items.push(p);
    return this.items.length >= MAX_BLOCK_ITEMS ? this.take() : null;
  }

  /** The block of what was added so far (null when empty), and a new empty block begins. */
  take(): Uint8Array | null {
    if (this.items.length === 0) return null;
    const items = this.items;
    this.items = [];
    const addresses = new Table<string>(), classtypes = new Table<string>(), names = new Table<string>(), sigs = new Table<string>();
    const addressList: Uint8Array[] = [], classtypeList: Map<number, number>[] = [], nameList: Uint8Array[] = [], sigList: Map<number, number>[] = [];
    const address = (a: number | string, prefix?: number) => {
      const bytes = addressBytes(a, prefix);
      return addresses.index(bytes.join("."), () => addressList.push(bytes));
    };
    let earliest = Infinity;
    for (const p of items) earliest = Math.min(earliest, p.tsUs);
    let unmatchedQueries = 0, unmatchedResponses = 0;
    const records = items.map((p) => {
      const q = p.query, r = p.response;
      if (q && !r) unmatchedQueries++;
      if (r && !q) unmatchedResponses++;
      const sig = new Map<number, number>();
      sig.set(0, address(p.server));
      sig.set(1, p.serverPort);
      sig.set(2, (p.tcp ? 1 << 1 : 0) | (p.v6 ? 1 : 0));
      const noQuestion = p.qtype < 0;
      sig.set(4, (q ? 1 : 0) | (r ? 2 : 0) | (q && q.ednsVersion >= 0 ? 4 : 0) | (noQuestion ? 16 : 0));
      let dnsFlags = 0;
      if (q) {
        sig.set(5, q.opcode);
        dnsFlags |= flagBits(q.flags, q.do);
        sig.set(7, q.rcode);
        sig.set(9, q.qdcount);
        sig.set(10, q.ancount);
        sig.set(11, q.nscount);
        sig.set(12, q.arcount);
        if (q.ednsVersion >= 0) { sig.set(13, q.ednsVersion); sig.set(14, q.udpSize); }
      }
      if (r) {
        dnsFlags |= flagBits(r.flags, false) << 8;
        sig.set(16, r.rcode);
      }
      sig.set(6, dnsFlags);
      if (!noQuestion) sig.set(8, classtypes.index(`${p.qtype}/${p.qclass}`, () => classtypeList.push(new Map([[0, p.qtype], [1, p.qclass]]))));
      const sigIndex = sigs.index(JSON.stringify([...sig]), () => sigList.push(sig));
      const qr = new Map<number, number>();
      qr.set(0, p.tsUs - earliest);
      qr.set(1, address(p.client, typeof p.client === "number" ? this.o.clientPrefixV4 : this.o.clientPrefixV6));
      qr.set(2, p.clientPort);
      qr.set(3, p.id);
      qr.set(4, sigIndex);
      if (q) qr.set(5, p.hopLimit);
      if (q && r) qr.set(6, r.delayUs);
      if (!noQuestion) qr.set(7, names.index(p.qname, () => nameList.push(wireName(p.qname))));
      if (q) qr.set(8, q.size);
      if (r) qr.set(9, r.size);
      return qr;
    });
    const tables = new Map<number, unknown>();
    if (addressList.length) tables.set(0, addressList);
    if (classtypeList.length) tables.set(1, classtypeList);
    if (nameList.length) tables.set(2, nameList);
    if (sigList.length) tables.set(3, sigList);
    const block = new Map<number, unknown>([
      [0, new Map([[0, [Math.floor(earliest / 1e6), earliest % 1e6]]])],
      [1, new Map([[0, items.reduce((n, p) => n + (p.query ? 1 : 0) + (p.response ? 1 : 0), 0)], [1, items.length], [2, unmatchedQueries], [3, unmatchedResponses]])],
      [2, tables],
      [3, records],
    ]);
    // A copy: cbor-x's encoder writes into a buffer it reuses for the next encode.
    return new Uint8Array(cbor.encode(block));
  }
}

/** DNS header flags as C-DNS's DNSFlags bits for one side: CD 0, AD 1, Z 2, RA 3, RD 4, TC 5, AA 6, and DO 7 (queries). */
function flagBits(f: number, dnssecOk: boolean): number {
  return ((f >> 4) & 1) | (((f >> 5) & 1) << 1) | (((f >> 6) & 1) << 2) | (((f >> 7) & 1) << 3) | (((f >> 8) & 1) << 4) | (((f >> 9) & 1) << 5) | (((f >> 10) & 1) << 6) | (dnssecOk ? 1 << 7 : 0);
}

/** A name in the name-rdata table is its wire form (uncompressed labels), as RFC 8618 stores names. */
export function wireName(text: string): Uint8Array {
  if (text === "" || text === ".") return Uint8Array.of(0);
  const parts: number[] = [];
  for (const label of text.split(".")) {
    const bytes: number[] = [];
    for (let i = 0; i < label.length; i++) {
      if (label[i] === "\\" && /^\d{3}$/.test(label.slice(i + 1, i + 4))) { bytes.push(Number(label.slice(i + 1, i + 4))); i += 3; }
      else bytes.push(label.charCodeAt(i));
    }
    parts.push(bytes.length, ...bytes);
  }
  parts.push(0);
  return Uint8Array.from(parts);
}

class Table<K> {
  private readonly m = new Map<K, number>();
  index(key: K, add: () => void): number {
    let i = this.m.get(key);
    if (i === undefined) {
      i = this.m.size;
      this.m.set(key, i);
      add();
    }
    return i;
  }
}
