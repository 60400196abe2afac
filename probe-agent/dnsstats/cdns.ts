// The sample of whole query/response pairs as C-DNS (RFC 8618): a file is the array ["C-DNS", preamble, blocks],
// the blocks array written with indefinite length so blocks are appended as they fill and the file is closed by
// its break byte. Each block holds up to `MAX_BLOCK_ITEMS` pairs and tables of what they share (addresses,
// class/type pairs, names, query/response signatures), which is where C-DNS gets its size (RFC 8618 App. C).
// CBOR by cbor-x; maps with integer keys as the RFC's CDDL (Appendix A) numbers them.
import { Encoder } from "cbor-x";
import { addressBytes } from "./address.ts";
import type { SampledPair } from "./collector.ts";

export const MAX_BLOCK_ITEMS = 5000;
const TICKS_PER_SECOND = 1_000_000;
/** RR types this collector records (it records every type; the list names the assigned ones, RFC 8618 §6.2.2). */
const RR_TYPES = [...Array.from({ length: 260 }, (_, i) => i + 1), 32768, 32769];

// Plain CBOR only: no record extension, no tag on byte strings, and Maps as plain maps (cbor-x otherwise tags them
// 259, an option its typings do not declare).
const cbor = new Encoder({ useRecords: false, tagUint8Array: false, variableMapSize: true, ...{ useTag259ForMaps: false } });

export type CdnsOptions = {
  /** Client address prefix kept (bits); undefined keeps whole addresses (the host's opt-in). */
  clientPrefixV4?: number;
  clientPrefixV6?: number;
  sampleRate: number;
  queryTimeoutMs: number;
  generator: string;
  interfaces?: string[];
};

/** The bytes that open a C-DNS file: the outer array, its type id, the preamble and the start of the blocks array. */
export function cdnsHeader(o: CdnsOptions): Buffer {
  // StorageHints: which QueryResponse / QueryResponseSignature fields this writer fills (RFC 8618 §7.3.1.1.1.1).
  const qrHints = 0b11_1111_1111; // time-offset … response-size
  const sigHints = 0b1_0111_1111_1111_0111; // all but qr-type (3) and query-opt-rdata-index (15)
  const storage = new Map<number, unknown>([
    [0, TICKS_PER_SECOND],
    [1, MAX_BLOCK_ITEMS],
    [2, new Map([[0, qrHints], [1, sigHints], [2, 0], [3, 0]])],
    [3, Array.from({ length: 16 }, (_, i) => i)],
    [4, RR_TYPES],
    // sampled-data (bit 1) and normalised (lower-case) names (bit 2); anonymised (bit 0) when prefixes are cut.
    [5, 0b110 | (o.clientPrefixV4 !== undefined ? 1 : 0)],
  ]);
  if (o.clientPrefixV4 !== undefined) storage.set(6, o.clientPrefixV4);
  if (o.clientPrefixV6 !== undefined) storage.set(7, o.clientPrefixV6);
  storage.set(10, `deterministic by flow: hash(client address, client port, DNS id) < ${o.sampleRate}`);
  if (o.clientPrefixV4 !== undefined) storage.set(11, `client addresses truncated to /${o.clientPrefixV4} and /${o.clientPrefixV6}`);
  const collection = new Map<number, unknown>([[0, o.queryTimeoutMs], [8, o.generator]]);
  if (o.interfaces?.length) collection.set(4, o.interfaces);
  const preamble = new Map<number, unknown>([[0, 1], [1, 0], [3, [new Map([[0, storage], [1, collection]])]]]);
  return Buffer.concat([Buffer.from([0x83]), cbor.encode("C-DNS"), cbor.encode(preamble), Buffer.from([0x9f])]);
}

/** The byte that closes the blocks array (and so the file). */
export const CDNS_END = Buffer.from([0xff]);

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

  add(p: SampledPair): Buffer | null {
    this.items.push(p);
    return this.items.length >= MAX_BLOCK_ITEMS ? this.take() : null;
  }

  /** The block of what was added so far (null when empty), and a new empty block begins. */
  take(): Buffer | null {
    if (this.items.length === 0) return null;
    const items = this.items;
    this.items = [];
    const addresses = new Table<string>(), classtypes = new Table<string>(), names = new Table<string>(), sigs = new Table<string>();
    const addressList: Buffer[] = [], classtypeList: Map<number, number>[] = [], nameList: Buffer[] = [], sigList: Map<number, number>[] = [];
    const address = (a: number | string, prefix?: number) => {
      const bytes = Buffer.from(addressBytes(a, prefix));
      return addresses.index(bytes.toString("hex"), () => addressList.push(bytes));
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
    return Buffer.from(cbor.encode(block));
  }
}

/** DNS header flags as C-DNS's DNSFlags bits for one side: CD 0, AD 1, Z 2, RA 3, RD 4, TC 5, AA 6, and DO 7 (queries). */
function flagBits(f: number, dnssecOk: boolean): number {
  return ((f >> 4) & 1) | (((f >> 5) & 1) << 1) | (((f >> 6) & 1) << 2) | (((f >> 7) & 1) << 3) | (((f >> 8) & 1) << 4) | (((f >> 9) & 1) << 5) | (((f >> 10) & 1) << 6) | (dnssecOk ? 1 << 7 : 0);
}

/** A name in the name-rdata table is its wire form (uncompressed labels), as RFC 8618 stores names. */
export function wireName(text: string): Buffer {
  if (text === "" || text === ".") return Buffer.from([0]);
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
  return Buffer.from(parts);
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
