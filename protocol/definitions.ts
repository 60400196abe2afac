// RIPE Atlas measurement definitions as users send them (POST /api/v2/measurements/): a type's spec (atlas.ts)
// plus the scheduling metadata, and the probe sources. Only the edge validates these: the probe agent never
// imports this module (probe-agent/build.ts checks), so their schemas cost it no memory.
import * as z from "zod/mini";
import { DnsSpec, HttpSpec, intIn, MEASUREMENT_TYPES, type MeasurementSpec, NtpSpec, opt, PingSpec, SslcertSpec, str, TracerouteSpec } from "./atlas.ts";

const unixOrIso = z.union([
  z.int().check(z.nonnegative()),
  z.string().check(z.refine((s) => !Number.isNaN(Date.parse(s)), "Enter a unix timestamp or an ISO-8601 date.")),
]);

/** Time fields accept unix seconds or ISO-8601; normalised to unix seconds. */
export function toUnix(v: number | string): number {
  return typeof v === "number" ? v : Math.floor(Date.parse(v) / 1000);
}

/** Unix seconds as Atlas writes times in its objects (ISO-8601, UTC); null stays null. */
export function isoTime(unixSeconds: number | null): string | null {
  return unixSeconds === null ? null : new Date(unixSeconds * 1000).toISOString();
}

/** Scheduling and bookkeeping fields every definition may carry; they never reach the probe. */
const metadata = {
  description: z.string({ error: "This field is required." }).check(z.maxLength(256)),
  interval: opt(z.int().check(z.minimum(60, "Ensure this value is at least 60 seconds."), z.maximum(31_536_000))),
  spread: opt(intIn(0, 400)),
  start_time: opt(unixOrIso),
  stop_time: opt(unixOrIso),
  is_oneoff: opt(z.boolean()),
  is_public: opt(z.boolean()),
  tags: opt(z.array(str(64)).check(z.maxLength(32))),
};
const METADATA_KEYS = Object.keys(metadata) as (keyof typeof metadata)[];

// Strict: a field Vantage does not know (an Atlas field it does not support, or a typo) is refused with a 400 that
// names it, never dropped: `prepend_probe_id` quietly left out would ask another name than the user meant.
export const PingDefinition = z.strictObject({ ...PingSpec.shape, ...metadata });
export const DnsDefinition = z.strictObject({ ...DnsSpec.shape, ...metadata });
export const NtpDefinition = z.strictObject({ ...NtpSpec.shape, ...metadata });
export const TracerouteDefinition = z.strictObject({ ...TracerouteSpec.shape, ...metadata });
export const HttpDefinition = z.strictObject({ ...HttpSpec.shape, ...metadata });
export const SslcertDefinition = z.strictObject({ ...SslcertSpec.shape, ...metadata });
export type PingDefinition = z.output<typeof PingDefinition>;

export const Definition = z.discriminatedUnion("type", [PingDefinition, TracerouteDefinition, DnsDefinition, NtpDefinition, HttpDefinition, SslcertDefinition], {
  error: (iss) =>
    iss.code === "invalid_union" ? `Unknown measurement type; supported: ${MEASUREMENT_TYPES.join(", ")}.` : undefined,
});
export type Definition = z.output<typeof Definition>;

/** The probe's part of a definition. */
export function specOf(def: Definition): MeasurementSpec {
  const spec: Record<string, unknown> = { ...def };
  for (const k of METADATA_KEYS) delete spec[k];
  return spec as MeasurementSpec;
}

export const AREAS = ["WW", "West", "North-Central", "South-Central", "North-East", "South-East"] as const;

export const ProbeSource = z.strictObject({
  // `region` is Atlas's newer name for the same areas (cousteau 2.3 sends it).
  type: z.enum(["area", "region", "country", "asn", "prefix", "probes", "msm"], {
    error: "type must be one of area, region, country, asn, prefix, probes, msm.",
  }),
  value: z.pipe(z.union([z.string(), z.number()]), z.transform(String)),
  requested: intIn(1, 1000),
  tags: opt(z.strictObject({ include: opt(z.array(z.string())), exclude: opt(z.array(z.string())) })),
}).check(z.superRefine((s, ctx) => {
  const bad = (message: string) => ctx.addIssue({ code: "custom", path: ["value"], message });
  if ((s.type === "area" || s.type === "region") && !(AREAS as readonly string[]).includes(s.value)) bad(`${s.type} must be one of ${AREAS.join(", ")}.`);
  if (s.type === "country" && !/^[A-Za-z]{2}$/.test(s.value)) bad("country must be a two-letter ISO 3166 code.");
  if (s.type === "asn" && !/^\d{1,10}$/.test(s.value)) bad("asn must be a number.");
  if (s.type === "prefix" && !/^[0-9a-fA-F:.]+\/\d{1,3}$/.test(s.value)) bad("prefix must be an address/length.");
  if (s.type === "probes" && !/^\d+(,\d+)*$/.test(s.value)) bad("probes must be a comma-separated list of probe ids.");
  if (s.type === "msm" && !/^\d+$/.test(s.value)) bad("msm must be a measurement id (its probes are reused).");
}));
export type ProbeSource = z.output<typeof ProbeSource>;

export const CreateMeasurements = z.strictObject({
  definitions: z.array(Definition).check(z.minLength(1, "At least one definition is required."), z.maxLength(100)),
  probes: z.array(ProbeSource).check(z.minLength(1, "At least one probe source is required."), z.maxLength(100)),
  start_time: opt(unixOrIso),
  stop_time: opt(unixOrIso),
  is_oneoff: opt(z.boolean()),
  bill_to: opt(z.string()),
  /** Not Atlas: take the answer of an identical recent one-off (named in the response's warnings) at no cost. */
  reuse: opt(z.boolean()),
}).check(z.superRefine((req, ctx) => {
  req.definitions.forEach((d, i) => {
    if (d.type === "dns" && !d.use_probe_resolver && !d.target) {
      ctx.addIssue({ code: "custom", path: ["definitions", i, "target"], message: "This field is required unless use_probe_resolver is true." });
    }
    if (d.type === "traceroute" && d.first_hop > d.max_hops) {
      ctx.addIssue({ code: "custom", path: ["definitions", i, "first_hop"], message: "first_hop must not exceed max_hops." });
    }
  });
}));
export type CreateMeasurements = z.output<typeof CreateMeasurements>;

/** A field of a request body Atlas-style clients send that Vantage cannot honour: where, and why. */
export type Unsupported = { pointer: string; detail: string };

const plainObject = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);

/** Atlas reads `null` as "not given": the object without its null fields. */
export function dropNulls<T extends Record<string, unknown>>(o: T): T {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== null)) as T;
}

/**
 * A create body as Atlas reads it, before validation: `null` is "not given" for every optional field (RIPE's
 * `ripe-atlas measure http` sends `query_string: null`), and the Atlas spellings Vantage maps are mapped. What an
 * Atlas client may send but Vantage cannot do is returned as refusals naming the field (the strict schemas refuse
 * the rest by name). Values that only restate Vantage's behaviour (option sizes of 0, `auto_topup: false`) are accepted.
 */
export function atlasCreateBody(body: Record<string, unknown>): { body: Record<string, unknown>; unsupported: Unsupported[] } {
  const unsupported: Unsupported[] = [];
  const out = dropNulls(body);
  if (Array.isArray(out.definitions)) {
    out.definitions = out.definitions.map((raw, i) => {
      if (!plainObject(raw)) return raw;
      const d = dropNulls(raw);
      const at = (field: string) => `/definitions/${i}/${field}`;
      // Atlas's older name for a traceroute's per-hop response timeout (RIPE's CLI always sends it).
      if (d.type === "traceroute" && "timeout" in d) {
        if ("response_timeout" in d && d.response_timeout !== d.timeout) unsupported.push({ pointer: at("timeout"), detail: "timeout and response_timeout differ; send one of them." });
        else d.response_timeout = d.timeout;
        delete d.timeout;
      }
      for (const field of ["destination_option_size", "hop_by_hop_option_size"]) {
        if (!(field in d)) continue;
        if (d[field] === 0) delete d[field];
        else unsupported.push({ pointer: at(field), detail: "IPv6 extension header options are not supported; leave it out or send 0." });
      }
      // DNS over TLS runs over TCP, as on Atlas; RIPE's CLI sends its UDP default beside `--tls`.
      if (d.type === "dns" && d.tls === true) d.protocol = "TCP";
      if ("auto_topup" in d) {
        if (d.auto_topup === false) delete d.auto_topup;
        else unsupported.push({ pointer: at("auto_topup"), detail: "auto_topup is not supported: probes that leave a measurement are not replaced." });
      }
      return d;
    });
  }
  if (Array.isArray(out.probes)) {
    out.probes = out.probes.map((raw) => {
      if (!plainObject(raw)) return raw;
      const p = dropNulls(raw);
      if (plainObject(p.tags)) p.tags = dropNulls(p.tags);
      return p;
    });
  }
  return { body: out, unsupported };
}
