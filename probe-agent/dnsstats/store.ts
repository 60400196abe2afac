// DNS statistics on the appliance's disk, under one directory:
//   minutes/<stop_time>.json       one minute's record (collector.ts MinuteRecord: per server, DSC datasets, clients;
//                                  `<stop_time>.2.json` for the rest of a minute a restart cut in two)
//   dsc/<stop_time>.dscdata.json   the same minute as DSC writes it (its datasets summed over servers)
//   cdns/<YYYYMMDD-HH>.cdns.gz     the hour's sampled pairs as C-DNS (RFC 8618), gzipped when the hour closes
// A C-DNS file being written is `<hour>.cdns` with `<hour>.cdns.blocks` (each whole block's end offset): after a
// crash it is cut back to its last whole block and closed at the next start, never left unreadable.
import { appendFileSync, closeSync, existsSync, fsyncSync, mkdirSync, openSync, readdirSync, readFileSync, renameSync, rmSync, truncateSync, writeFileSync, writeSync } from "node:fs";
import { join } from "node:path";
import { gzipSync } from "node:zlib";
import { CDNS_END, CdnsBlock, cdnsHeader, type CdnsOptions } from "./cdns.ts";
import type { MinuteRecord, SampledPair } from "./collector.ts";
import { mergeDsc } from "../../protocol/dsc.ts";

export class DnsStatsStore {
  private readonly dir: string;
  private readonly cdnsOptions: CdnsOptions;
  private hour = "";
  private fd = -1;
  private offset = 0;
  private block: CdnsBlock;
  /** Files closed in this run (for the caller's summary and for uploads). */
  readonly written = { minutes: 0, cdns: [] as string[] };

  /** Each block as it is written (its hour, its CBOR, how many pairs): the uploader's copy. */
  private readonly onBlock: (hour: string, block: Uint8Array, pairs: number) => void;

  constructor(dir: string, cdnsOptions: CdnsOptions, onBlock: (hour: string, block: Uint8Array, pairs: number) => void = () => {}) {
    this.dir = dir;
    this.onBlock = onBlock;
    this.cdnsOptions = cdnsOptions;
    this.block = new CdnsBlock(cdnsOptions);
    for (const sub of ["minutes", "dsc", "cdns"]) mkdirSync(join(dir, sub), { recursive: true });
    this.recover();
  }

  minute(m: MinuteRecord): void {
    // A minute cut in two by a restart is two records (each counts its own part): the second gets `.2`.
    let name = String(m.stop_time);
    for (let part = 2; existsSync(join(this.dir, "minutes", `${name}.json`)); part++) name = `${m.stop_time}.${part}`;
    writeAtomic(join(this.dir, "minutes", `${name}.json`), JSON.stringify(m));
    const byName = new Map<string, MinuteRecord["servers"][number]["datasets"]>();
    for (const s of m.servers) for (const d of s.datasets) byName.set(d.name, [...(byName.get(d.name) ?? []), d]);
    writeAtomic(join(this.dir, "dsc", `${name}.dscdata.json`), JSON.stringify([...byName.values()].map((parts) => mergeDsc(parts))));
    this.written.minutes++;
  }

  sample(p: SampledPair): void {
    // Pairs leave the collector when answered or given up, so a few arrive after their hour's file moved on:
    // they go into the open file (their own time is in each record); files only move forward.
    const hour = hourOf(p.tsUs);
    if (this.fd < 0 || hour > this.hour) this.openHour(hour);
    const pairs = this.block.size + 1;
    const bytes = this.block.add(p);
    if (bytes) this.writeBlock(bytes, pairs);
  }

  /** Writes what is pending and closes the open hour's file. */
  close(): void {
    this.closeHour();
  }

  private openHour(hour: string): void {
    this.closeHour();
    this.hour = hour;
    const path = join(this.dir, "cdns", `${hour}.cdns`);
    if (existsSync(path)) this.finish(path); // an earlier run of the same hour: close that file first
    this.fd = openSync(path, "w");
    const header = cdnsHeader(this.cdnsOptions);
    writeSync(this.fd, header);
    this.offset = header.length;
    writeFileSync(`${path}.blocks`, `${this.offset}\n`);
  }

  private writeBlock(bytes: Uint8Array, pairs: number): void {
    writeSync(this.fd, bytes);
    this.offset += bytes.length;
    fsyncSync(this.fd);
    appendFileSync(join(this.dir, "cdns", `${this.hour}.cdns.blocks`), `${this.offset}\n`);
    this.onBlock(this.hour, bytes, pairs);
  }

  private closeHour(): void {
    if (this.fd < 0) return;
    const pairs = this.block.size;
    const last = this.block.take();
    if (last) this.writeBlock(last, pairs);
    closeSync(this.fd);
    this.fd = -1;
    const path = join(this.dir, "cdns", `${this.hour}.cdns`);
    this.written.cdns.push(this.finish(path));
    this.hour = "";
  }

  /** Ends a C-DNS file after its last whole block, gzips it and returns the .gz path. */
  private finish(path: string): string {
    const marks = existsSync(`${path}.blocks`) ? readFileSync(`${path}.blocks`, "utf8").trim().split("\n").map(Number).filter((n) => n > 0) : [];
    const whole = marks.at(-1);
    if (whole === undefined) { rmSync(path, { force: true }); rmSync(`${path}.blocks`, { force: true }); return ""; }
    truncateSync(path, whole);
    appendFileSync(path, CDNS_END);
    // The same hour written by an earlier run (a restart) keeps its file; this one is the next part.
    let gz = `${path}.gz`;
    for (let part = 2; existsSync(gz); part++) gz = path.replace(/\.cdns$/, `.${part}.cdns.gz`);
    writeAtomic(gz, gzipSync(readFileSync(path), { level: 9 }));
    rmSync(path);
    rmSync(`${path}.blocks`);
    return gz;
  }

  private recover(): void {
    for (const f of readdirSync(join(this.dir, "cdns"))) if (f.endsWith(".cdns")) this.finish(join(this.dir, "cdns", f));
  }
}

export function hourOf(tsUs: number): string {
  const d = new Date(tsUs / 1000);
  return `${d.toISOString().slice(0, 10).replaceAll("-", "")}-${d.toISOString().slice(11, 13)}`;
}

function writeAtomic(path: string, data: string | Buffer): void {
  writeFileSync(`${path}.tmp`, data);
  renameSync(`${path}.tmp`, path);
}
