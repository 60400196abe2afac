// dnstap input: Frame Streams (the framing, from a file or a unix socket a DNS server writes to) carrying dnstap
// protobuf messages (dnstap.proto: Dnstap{message: Message{type, socket_family, socket_protocol, addresses, ports,
// times, wire-format messages}}). The server logs itself, so nothing is reassembled or guessed: each query and each
// response becomes a DnsPacket for the collector, timed when the server saw it. Knot (mod-dnstap), unbound and
// BIND write it. Protobuf wire decoding by @bufbuild/protobuf.
import { createServer, type Server, type Socket } from "node:net";
import { chmodSync, rmSync } from "node:fs";
import { BinaryReader } from "@bufbuild/protobuf/wire";
import type { DnsPacket } from "./decode.ts";

const CONTENT_TYPE = "protobuf:dnstap.Dnstap";
const ACCEPT = 1, START = 2, STOP = 3, READY = 4, FINISH = 5;
const FIELD_CONTENT_TYPE = 1;
const MAX_FRAME = 1 << 20;

/** dnstap Message.type values this collector counts: messages a server received from or sent to its clients. */
const QUERY_TYPES = new Set([1, 5]); // AUTH_QUERY, CLIENT_QUERY
const RESPONSE_TYPES = new Set([2, 6]); // AUTH_RESPONSE, CLIENT_RESPONSE
/** socket_protocol → the transport the statistics show. */
const TRANSPORTS = ["udp", "udp", "tcp", "tls", "https", "udp", "tcp", "quic"] as const;

export type DnstapCounters = { frames: number; messages: number; other_types: number; malformed: number };

/**
 * Frame Streams, read incrementally (chunks of a file or a socket). Data frames go to `onFrame`; control frames
 * are checked, and a bidirectional reader answers READY with ACCEPT and STOP with FINISH through `reply`.
 */
export class FrameStreamReader {
  private pending: Buffer = Buffer.alloc(0);
  started = false;
  stopped = false;
  private readonly onFrame: (frame: Uint8Array) => void;
  private readonly reply?: (control: Buffer) => void;
  constructor(onFrame: (frame: Uint8Array) => void, reply?: (control: Buffer) => void) {
    this.onFrame = onFrame;
    this.reply = reply;
  }

  push(chunk: Buffer): void {
    let buf = this.pending.length ? Buffer.concat([this.pending, chunk]) : chunk;
    let off = 0;
    while (buf.length - off >= 4) {
      const len = buf.readUInt32BE(off);
      if (len === 0) {
        if (buf.length - off < 8) break;
        const clen = buf.readUInt32BE(off + 4);
        if (clen < 4 || clen > 512) throw new Error(`Frame Streams control frame of ${clen} bytes: not dnstap`);
        if (buf.length - off < 8 + clen) break;
        this.control(buf.subarray(off + 8, off + 8 + clen));
        off += 8 + clen;
        continue;
      }
      if (len > MAX_FRAME) throw new Error(`Frame Streams data frame of ${len} bytes (at most ${MAX_FRAME})`);
      if (buf.length - off < 4 + len) break;
      if (!this.started) throw new Error("Frame Streams data before START");
      this.onFrame(buf.subarray(off + 4, off + 4 + len));
      off += 4 + len;
    }
    this.pending = off === buf.length ? Buffer.alloc(0) : Buffer.from(buf.subarray(off));
    buf = Buffer.alloc(0);
  }

  /** True when the stream ended on a frame boundary. */
  get whole(): boolean {
    return this.pending.length === 0;
  }

  private control(c: Buffer): void {
    const type = c.readUInt32BE(0);
    const types: string[] = [];
    for (let p = 4; p + 8 <= c.length;) {
      const field = c.readUInt32BE(p), flen = c.readUInt32BE(p + 4);
      if (p + 8 + flen > c.length) throw new Error("Frame Streams control field past the end of its frame");
      if (field === FIELD_CONTENT_TYPE) types.push(c.subarray(p + 8, p + 8 + flen).toString("latin1"));
      p += 8 + flen;
    }
    if ((type === READY || type === START) && types.length > 0 && !types.includes(CONTENT_TYPE)) {
      throw new Error(`Frame Streams content type ${types.join(", ")}; this reader takes ${CONTENT_TYPE}`);
    }
    if (type === READY) this.reply?.(controlFrame(ACCEPT, [CONTENT_TYPE]));
    else if (type === START) this.started = true;
    else if (type === STOP) {
      this.stopped = true;
      this.reply?.(controlFrame(FINISH, []));
    } else if (type !== ACCEPT && type !== FINISH) throw new Error(`Frame Streams control type ${type} is not one the protocol defines`);
  }
}

export function controlFrame(type: number, contentTypes: string[]): Buffer {
  const fields = contentTypes.map((t) => {
    const b = Buffer.alloc(8 + t.length);
    b.writeUInt32BE(FIELD_CONTENT_TYPE, 0);
    b.writeUInt32BE(t.length, 4);
    b.write(t, 8, "latin1");
    return b;
  });
  const body = Buffer.concat([Buffer.from([0, 0, 0, type]), ...fields]);
  const head = Buffer.alloc(8);
  head.writeUInt32BE(0, 0);
  head.writeUInt32BE(body.length, 4);
  return Buffer.concat([head, body]);
}

/**
 * One dnstap frame to the collector: a query or response a server exchanged with a client becomes a DnsPacket
 * (addresses oriented as on the wire: a query from the client, a response to it). Other message types (a
 * resolver's own upstream queries, …) are counted and left out.
 */
export function dnstapMessage(frame: Uint8Array, p: DnsPacket, c: DnstapCounters, each: (p: DnsPacket) => void): void {
  c.frames++;
  try {
    const outer = new BinaryReader(frame);
    let message: Uint8Array | null = null;
    while (outer.pos < outer.len) {
      const [field, wire] = outer.tag();
      if (field === 14 && wire === 2) message = outer.bytes();
      else outer.skip(wire);
    }
    if (!message) { c.other_types++; return; }
    const m = new BinaryReader(message);
    let type = 0, family = 0, protocol = 1, qport = 0, rport = 0, qsec = 0, qnsec = 0, rsec = 0, rnsec = 0;
    let qaddr: Uint8Array | null = null, raddr: Uint8Array | null = null, qmsg: Uint8Array | null = null, rmsg: Uint8Array | null = null;
    while (m.pos < m.len) {
      const [field, wire] = m.tag();
      switch (field) {
        case 1: type = m.int32(); break;
        case 2: family = m.int32(); break;
        case 3: protocol = m.int32(); break;
        case 4: qaddr = m.bytes(); break;
        case 5: raddr = m.bytes(); break;
        case 6: qport = m.uint32(); break;
        case 7: rport = m.uint32(); break;
        case 8: qsec = Number(m.uint64()); break;
        case 9: qnsec = m.fixed32(); break;
        case 10: qmsg = m.bytes(); break;
        case 12: rsec = Number(m.uint64()); break;
        case 13: rnsec = m.fixed32(); break;
        case 14: rmsg = m.bytes(); break;
        default: m.skip(wire);
      }
    }
    const isQuery = QUERY_TYPES.has(type), isResponse = RESPONSE_TYPES.has(type);
    if (!isQuery && !isResponse) { c.other_types++; return; }
    const wire = isQuery ? qmsg : rmsg;
    const len = family === 2 ? 16 : 4;
    if (!wire || !qaddr || !raddr || qaddr.length !== len || raddr.length !== len) { c.malformed++; return; }
    const client = address(qaddr), server = address(raddr);
    p.v6 = family === 2;
    p.tcp = protocol !== 1 && protocol !== 5;
    p.transport = TRANSPORTS[protocol] ?? "udp";
    p.hopLimit = 0;
    p.tsUs = isQuery ? qsec * 1e6 + Math.floor(qnsec / 1000) : rsec * 1e6 + Math.floor(rnsec / 1000);
    p.src = isQuery ? client : server;
    p.dst = isQuery ? server : client;
    p.srcPort = isQuery ? qport : rport;
    p.dstPort = isQuery ? rport : qport;
    p.buf = wire;
    p.off = 0;
    p.len = wire.length;
    c.messages++;
    each(p);
  } catch {
    c.malformed++;
  }
}

function address(b: Uint8Array): number | string {
  if (b.length === 4) return ((b[0]! << 24) | (b[1]! << 16) | (b[2]! << 8) | b[3]!) >>> 0;
  let s = "";
  for (const x of b) s += x.toString(16).padStart(2, "0");
  return s;
}

/**
 * Listens on a unix socket for a DNS server's dnstap (Knot's `sink: unix:…`, unbound's dnstap-socket-path, BIND's
 * `dnstap-output unix`), bidirectional Frame Streams: every connection's frames to `onFrame`. A connection that
 * breaks the protocol is closed with the reason logged; others go on.
 */
export type DnstapListener = { server: Server; close: () => Promise<void> };

export function serveDnstap(path: string, onFrame: (frame: Uint8Array) => void, log: (msg: string) => void): Promise<DnstapListener> {
  rmSync(path, { force: true });
  const sockets = new Set<Socket>();
  const server = createServer((socket: Socket) => {
    sockets.add(socket);
    socket.on("close", () => sockets.delete(socket));
    const reader = new FrameStreamReader(onFrame, (control) => socket.write(control));
    socket.on("data", (chunk: Buffer) => {
      try {
        reader.push(chunk);
      } catch (e) {
        log(`dnstap connection on ${path} closed: ${(e as Error).message}`);
        socket.destroy();
      }
    });
    socket.on("error", () => socket.destroy());
  });
  // Closing ends the server's connections too (a DNS server keeps its dnstap connection open for ever, and a
  // listener's close waits for every connection): what they already delivered has been counted.
  const close = () => new Promise<void>((resolve) => {
    server.close(() => resolve());
    for (const s of sockets) s.destroy();
  });
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(path, () => {
      // The DNS server runs as its own user; only the socket's owner and group may write to it.
      chmodSync(path, 0o660);
      resolve({ server, close });
    });
  });
}
