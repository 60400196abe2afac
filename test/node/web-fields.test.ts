// The console's new-measurement form describes Atlas's fields as data (web/src/measurement-fields.ts) instead of
// bundling the edge's schemas: every field, range and default it shows must be the edge's, or the form would
// offer what the API refuses, or hide what it takes.
import { describe, expect, it } from "vitest";
import { DnsSpec, HttpSpec, MEASUREMENT_TYPES, NtpSpec, PingSpec, SslcertSpec, TracerouteSpec } from "../../protocol/atlas.ts";
import { AREAS as EDGE_AREAS, Definition } from "../../protocol/definitions.ts";
import { DEFAULT_INTERVAL as EDGE_INTERVAL } from "../../durable-objects/quotas.ts";
import { AREAS, DEFAULT_INTERVAL, DNS_QUERY_TYPES, FIELDS, TYPES } from "../../web/src/measurement-fields.ts";
import { DNS_QUERY_TYPES as EDGE_QUERY_TYPES } from "../../protocol/atlas.ts";

const SPECS = { ping: PingSpec, traceroute: TracerouteSpec, dns: DnsSpec, sslcert: SslcertSpec, http: HttpSpec, ntp: NtpSpec };
/** What the form leaves out, and why. */
const NOT_ON_THE_FORM = new Set([
  "type",  // the type picker
  "ping.include_probe_id",  // Atlas's field; Atlas's own form does not offer it either
  "http.version",  // one value (1.1)
]);
/** The smallest definition of each type the edge takes: the form's required fields, filled in. */
const MINIMAL: Record<string, Record<string, unknown>> = {
  dns: { query_type: "A", query_argument: "example.com" },
};

describe("the new-measurement form's fields", () => {
  it("offers every type the edge measures", () => {
    expect([...TYPES].sort()).toEqual([...MEASUREMENT_TYPES].sort());
  });

  for (const type of TYPES) {
    it(`${type}: every field of the edge's schema, with its default and range`, () => {
      const spec = SPECS[type];
      const formFields = FIELDS[type].filter((f) => f.name !== "description");
      const shape = Object.keys(spec.shape).filter((k) => !NOT_ON_THE_FORM.has(k) && !NOT_ON_THE_FORM.has(`${type}.${k}`));
      expect(formFields.map((f) => f.name).sort()).toEqual(shape.sort());
      // The edge's defaults, as it fills them into a definition given only what is required.
      const parsed = spec.parse({ type, af: 4, target: "192.0.2.1", ...MINIMAL[type] }) as Record<string, unknown>;
      for (const f of formFields) {
        if (f.name === "target" || f.name === "af" || (MINIMAL[type] && f.name in MINIMAL[type]!)) continue;
        expect(f.default, `${type}.${f.name}`).toEqual(parsed[f.name]);
        // Its range: the bounds are accepted and one past each is refused.
        if (f.kind === "number" && f.min !== undefined && f.max !== undefined) {
          const at = (v: number) => spec.safeParse({ type, af: 4, target: "192.0.2.1", ...MINIMAL[type], [f.name]: v }).success;
          expect([at(f.min), at(f.max), at(f.min - 1), at(f.max + 1)], `${type}.${f.name} ${f.min}–${f.max}`).toEqual([true, true, false, false]);
        }
        if (f.kind === "select") for (const o of f.options!) expect(spec.safeParse({ type, af: 4, target: "192.0.2.1", ...MINIMAL[type], [f.name]: o }).success).toBe(true);
      }
      // What the form sends with every field at its default is a definition the edge takes.
      const sent = Object.fromEntries(FIELDS[type].filter((f) => f.default !== undefined).map((f) => [f.name, f.name === "af" ? 4 : f.default]));
      expect(Definition.safeParse({ ...sent, ...MINIMAL[type], type, target: "192.0.2.1", description: "d" }).success).toBe(true);
    });
  }

  it("has the edge's lists of areas and query types, and its default interval", () => {
    expect(AREAS).toEqual(EDGE_AREAS);
    expect(DNS_QUERY_TYPES).toEqual(EDGE_QUERY_TYPES);
    expect(DEFAULT_INTERVAL).toBe(EDGE_INTERVAL);
  });
});
