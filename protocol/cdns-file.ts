// C-DNS files (RFC 8618): the array ["C-DNS", preamble, blocks], its blocks array of indefinite length so blocks
// are appended as they fill and the file is closed by its break byte. Shared by the agent, which writes its hourly
// files, and the edge, which builds a probe's hour from the blocks it uploaded. No Node built-ins (runs in workerd).
import { Encoder } from "cbor-x";

export const MAX_BLOCK_ITEMS = 5000;
const TICKS_PER_SECOND = 1_000_000;
/** RR types this collector records (it records every type; the list names the assigned ones, RFC 8618 §6.2.2). */
const RR_TYPES = [...Array.from({ length: 260 }, (_, i) => i + 1), 32768, 32769];

// Plain CBOR only: no record extension, no tag on byte strings, and Maps as plain maps (cbor-x otherwise tags them
// 259, an option its typings do not declare).
export const cbor = new Encoder({ useRecords: false, tagUint8Array: false, variableMapSize: true, ...{ useTag259ForMaps: false } });

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
export function cdnsHeader(o: CdnsOptions): Uint8Array {
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
  const id = new Uint8Array(cbor.encode("C-DNS")); // a copy: the encoder reuses its buffer
  return concat([Uint8Array.of(0x83), id, cbor.encode(preamble), Uint8Array.of(0x9f)]);
}

/** The byte that closes the blocks array (and so the file). */
export const CDNS_END = Uint8Array.of(0xff);

/** A whole C-DNS file: the opening for `o`, the blocks (each one CBOR map, as CdnsBlock makes them), the end. */
export function cdnsFile(o: CdnsOptions, blocks: Uint8Array[]): Uint8Array {
  return concat([cdnsHeader(o), ...blocks, CDNS_END]);
}

function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) { out.set(p, at); at += p.length; }
  return out;
}

