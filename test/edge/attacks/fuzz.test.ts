// The API fuzzer: requests generated from the API's own shapes (Atlas definitions, sources, participation requests,
// transfers, keys, registration) with hostile values mixed in, plus malformed bodies, headers, query strings and
// encodings, sent through the Worker's real fetch entry point against the edge as deployed. Whatever arrives, the
// edge answers: never a 5xx, every 4xx an Atlas error body, and every 400 naming the offending field (a JSON pointer
// into the body, or the query parameter). FUZZ_REQUESTS requests (3,000 in `npm test`; `npm run fuzz:api` sends
// 100,000); a failure is shrunk by fast-check to the smallest request that shows it.
import fc from "fast-check";
import { beforeAll, describe, expect, it } from "vitest";
import { call, env, newKey } from "../harness.ts";

const TYPES = ["ping", "traceroute", "dns", "ntp", "http", "sslcert"];
const hostile: fc.Arbitrary<unknown> = fc.oneof(
  fc.constant(null), fc.constant(undefined), fc.boolean(), fc.integer(), fc.double(), fc.bigInt().map(String), fc.string(), fc.string({ unit: "grapheme" }),
  fc.constantFrom("", " ", "\u0000", "../../etc/passwd", "1e309", "NaN", "-0", "0x7f.1", "::ffff:127.0.0.1", "%00", "__proto__", "constructor", "a".repeat(5000)),
  fc.constantFrom(-1, 0, 2 ** 31, 2 ** 53, -(2 ** 53), Number.MAX_VALUE, 1e-300, 0.5),
  fc.array(fc.anything(), { maxLength: 4 }), fc.object({ maxDepth: 2 }),
);
/** Mostly a value of the field's own shape, sometimes anything at all, sometimes left out. */
const field = <T>(valid: fc.Arbitrary<T>) => fc.option(fc.oneof({ weight: 4, arbitrary: valid as fc.Arbitrary<unknown> }, { weight: 1, arbitrary: hostile }), { freq: 8, nil: undefined });
const clean = (o: Record<string, unknown>) => Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined));

const target = fc.constantFrom("193.0.14.129", "2001:7fd::1", "k.root-servers.net", "example.com", "127.0.0.1", "10.1.2.3", "localhost", "fe80::1%eth0", "2130706433", "not a host!");
const definition = fc.record({
  type: field(fc.constantFrom(...TYPES)), af: field(fc.constantFrom(4, 6)), target: field(target), description: field(fc.string({ maxLength: 40 })),
  packets: field(fc.integer({ min: 0, max: 20 })), size: field(fc.integer({ min: -1, max: 3000 })), interval: field(fc.integer({ min: 0, max: 100_000 })),
  query_type: field(fc.constantFrom("A", "AAAA", "TXT", "BOGUS")), query_argument: field(fc.constantFrom("example.com", ".", "a..b")),
  protocol: field(fc.constantFrom("UDP", "TCP", "ICMP", "QUIC")), is_public: field(fc.boolean()), is_oneoff: field(fc.boolean()),
  start_time: field(fc.oneof(fc.integer({ min: 0, max: 2 ** 32 }), fc.constantFrom("2026-12-07T00:00:00Z", "tomorrow"))), stop_time: field(fc.integer({ min: 0, max: 2 ** 32 })),
  method: field(fc.constantFrom("GET", "HEAD", "POST", "PUT")), path: field(fc.constantFrom("/", "/x?y", "no-slash")), port: field(fc.integer({ min: -1, max: 70_000 })),
  tags: field(fc.array(fc.string({ maxLength: 10 }), { maxLength: 3 })), first_hop: field(fc.integer({ min: 0, max: 300 })), max_hops: field(fc.integer({ min: 0, max: 300 })),
}).map(clean);
const source = fc.record({
  type: field(fc.constantFrom("area", "country", "asn", "prefix", "probes", "msm", "udm")), value: field(fc.constantFrom("WW", "NL", "3333", "192.0.2.0/24", "1000001,1000002", "10000001", "x")),
  requested: field(fc.integer({ min: -1, max: 2000 })), tags: field(fc.record({ include: field(fc.array(fc.string({ maxLength: 8 }), { maxLength: 2 })) }).map(clean)),
}).map(clean);
const creation = fc.record({
  definitions: field(fc.array(definition, { maxLength: 3 })), probes: field(fc.array(source, { maxLength: 3 })), is_oneoff: field(fc.boolean()),
  start_time: field(fc.integer({ min: 0, max: 2 ** 32 })), bill_to: field(fc.string({ maxLength: 10 })), reuse: field(fc.boolean()),
}).map(clean);
const participation = fc.array(fc.record({ action: field(fc.constantFrom("add", "remove", "move")), type: field(fc.constantFrom("area", "probes", "msm")), value: field(fc.constantFrom("WW", "1000001", "1,2", "x")), requested: field(fc.integer({ min: -1, max: 2000 })) }).map(clean), { maxLength: 3 });
const transfer = fc.record({ recipient: field(fc.constantFrom("acct-nobody", "", "../x")), amount: field(fc.integer({ min: -10, max: 10 ** 7 })), request_id: field(fc.string({ maxLength: 20 })) }).map(clean);
const newKeyBody = fc.record({ label: field(fc.string({ maxLength: 20 })), grants: field(fc.array(fc.oneof(fc.constantFrom("create_measurements", "manage_keys", "root"), fc.record({ permission: fc.constantFrom("get_credits", "x") })), { maxLength: 3 })), valid_to: field(fc.integer({ min: 0, max: 2 ** 32 })) }).map(clean);
const registration = fc.record({ probe_id: field(fc.integer({ min: -1, max: 2_000_000 })), proof: field(fc.constantFrom("x.y.z", "", "eyJhbGciOiJub25lIn0.e30.")) }).map(clean);
const enrollment = fc.record({ public_key: field(fc.constantFrom("A".repeat(43), "short")), country_code: field(fc.constantFrom("NL", "XXX")), asn_v4: field(fc.integer({ min: -1, max: 2 ** 33 })), prefix_v4: field(fc.constantFrom("192.0.2.0/24", "300.0.0.0/8")) }).map(clean);

const ID = fc.oneof(fc.constantFrom("10000001", "1", "1001", "0", "-1", "99999999999999999999", "abc", "1.5", "%2e%2e"), fc.nat().map(String));
type Shape = { method: string; path: fc.Arbitrary<string>; body?: fc.Arbitrary<unknown>; admin?: boolean };
const ROUTES: Shape[] = [
  { method: "POST", path: fc.constant("/api/v2/measurements/"), body: creation },
  { method: "GET", path: fc.constantFrom("/api/v2/measurements/", "/api/v2/measurements/my/") },
  { method: "GET", path: ID.map((id) => `/api/v2/measurements/${id}/`) },
  { method: "DELETE", path: ID.map((id) => `/api/v2/measurements/${id}/`) },
  { method: "GET", path: ID.map((id) => `/api/v2/measurements/${id}/results/`) },
  { method: "GET", path: ID.map((id) => `/api/v2/measurements/${id}/latest/`) },
  { method: "POST", path: ID.map((id) => `/api/v2/measurements/${id}/participation-requests/`), body: participation },
  { method: "GET", path: ID.map((id) => `/api/v2/measurements/${id}/participation-requests/`) },
  { method: "GET", path: ID.map((id) => `/api/v2/participation-requests/${id}/`) },
  { method: "GET", path: fc.constantFrom("/api/v2/results/", "/api/v2/aggregates/", "/api/v2/alerts/", "/api/v2/bundles/", "/api/v2/probes/", "/api/v2/credits/", "/api/v2/credits/income-items/", "/api/v2/credits/expense-items/", "/api/v2/keys/") },
  { method: "GET", path: fc.oneof(ID, fc.constantFrom("ping-2026-12-07T0100", "ping-2026-13-07T0100", "..%2f..")).map((n) => `/api/v2/bundles/${n}/`) },
  { method: "GET", path: fc.constantFrom("ping-2026-12-07T0100", "x").map((n) => `/api/v2/bundles/${n}/download`) },
  { method: "GET", path: ID.map((id) => `/api/v2/probes/${id}/`) },
  { method: "POST", path: fc.constant("/api/v2/credits/transfers/"), body: transfer },
  { method: "POST", path: fc.constant("/api/v2/keys/"), body: newKeyBody },
  { method: "PATCH", path: fc.uuid().map((u) => `/api/v2/keys/${u}/`), body: fc.record({ enabled: field(fc.boolean()) }).map(clean) },
  { method: "POST", path: fc.constant("/probe/v1/challenge"), body: registration },
  { method: "POST", path: fc.constant("/probe/v1/register"), body: registration },
  { method: "GET", path: fc.constantFrom("/probe/v1/edge-key", "/probe/v1/releases/1.0.0", "/probe/v1/releases/..%2f..", "/probe/v1/controllers/weur-0") },
  { method: "POST", path: fc.constant("/admin/probes"), body: enrollment, admin: true },
  { method: "POST", path: fc.constant("/admin/keys"), body: fc.record({ label: field(fc.string({ maxLength: 10 })), credits: field(fc.integer({ min: -1, max: 10 ** 13 })) }).map(clean), admin: true },
  { method: "POST", path: fc.constantFrom("/admin/accounts/acct-fuzz/credits", "/admin/accounts/..%2f/credits"), body: fc.record({ credits: field(fc.integer({ min: -1, max: 10 })), request_id: field(fc.string({ maxLength: 8 })) }).map(clean), admin: true },
  { method: "POST", path: ID.map((id) => `/admin/probes/${id}/disable`), admin: true },
  { method: "POST", path: fc.constantFrom("/admin/rollouts", "/admin/bundles/build", "/admin/rollouts/halt"), body: fc.object({ maxDepth: 1 }), admin: true },
];

const PARAMS = ["page", "page_size", "status", "status__in", "id__in", "type", "is_oneoff", "mine", "format", "start", "stop", "probe_ids", "prb_id", "msm", "country_code", "asn", "asn_v4", "target", "prefix", "from", "to", "include", "key", "fields", "sort", "versions"];
const query = fc.array(fc.tuple(fc.constantFrom(...PARAMS), fc.oneof(fc.constantFrom("1", "0", "-1", "true", "x", "1,2,3", "1-99999", "2026-12-07", "txt", "json", "%", "%zz", "\u0000"), fc.string({ maxLength: 12 }))), { maxLength: 4 });

type Wire = { method: string; path: string; query: [string, string][]; body: string | Uint8Array | null; contentType: string | null; authorization: string | null };

let key = "";
function request(shape: Shape): fc.Arbitrary<Wire> {
  const body: fc.Arbitrary<string | Uint8Array | null> = shape.body
    ? fc.oneof(
      { weight: 6, arbitrary: shape.body.map((b) => JSON.stringify(b) ?? "null") },
      { weight: 1, arbitrary: fc.oneof(fc.string(), fc.constantFrom("{", "[", "{\"a\":", "nul", "[1,2", "{}".repeat(5000), "[".repeat(10_000) + "]".repeat(10_000))) },
      { weight: 1, arbitrary: fc.uint8Array({ maxLength: 64 }) },
      { weight: 1, arbitrary: fc.anything().map((v) => JSON.stringify(v) ?? "null") },
    )
    : fc.option(fc.string({ maxLength: 20 }), { freq: 4, nil: null });
  return fc.record({
    method: fc.oneof({ weight: 9, arbitrary: fc.constant(shape.method) }, { weight: 1, arbitrary: fc.constantFrom("GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS") }),
    path: shape.path,
    query,
    body,
    contentType: fc.oneof({ weight: 8, arbitrary: fc.constant("application/json") }, { weight: 1, arbitrary: fc.constantFrom(null, "text/plain", "application/json; charset=latin1", "multipart/form-data", "application/jsonx") }),
    authorization: fc.oneof(
      { weight: 6, arbitrary: fc.constant(shape.admin ? "Bearer test-admin-token" : "Key KEY") },
      { weight: 1, arbitrary: fc.constantFrom(null, "Key ", "Key nope", "Bearer test-admin-token", "Key KEY, Key KEY", "Basic YTpi", "Key " + "k".repeat(10_000)) },
    ),
  });
}
const anyRequest = fc.oneof(...ROUTES.map(request));

async function send(w: Wire): Promise<Response> {
  const q = new URLSearchParams(w.query).toString();
  const headers: Record<string, string> = {};
  if (w.contentType) headers["Content-Type"] = w.contentType;
  if (w.authorization) headers.Authorization = w.authorization.replaceAll("KEY", key);
  const method = w.method;
  return call(`${w.path}${q ? `?${q}` : ""}`, { method, headers, ...(w.body !== null && method !== "GET" && method !== "HEAD" ? { body: w.body } : {}) });
}

describe("the API under fuzzing", () => {
  beforeAll(async () => {
    key = await newKey("fuzzer", 10_000_000);
  });

  it(`answers ${(env as unknown as { FUZZ_REQUESTS?: string }).FUZZ_REQUESTS ?? 3000} generated requests without a 5xx, each 4xx an Atlas error naming the field`, async () => {
    const runs = Number((env as unknown as { FUZZ_REQUESTS?: string }).FUZZ_REQUESTS ?? 3000);
    const statuses = new Map<number, number>();
    await fc.assert(fc.asyncProperty(anyRequest, async (w) => {
      const res = await send(w);
      statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1);
      const text = await res.text();
      expect(res.status, `${w.method} ${w.path} → ${text.slice(0, 300)}`).toBeLessThan(500);
      if (res.status >= 400) {
        const body = JSON.parse(text) as { error: { status: number; detail: string; errors: { source: { pointer?: string; parameter?: string } }[] } };
        expect(body.error.status).toBe(res.status);
        expect(typeof body.error.detail).toBe("string");
        if (res.status === 400) {
          expect(body.error.errors.length, `400 without a field: ${body.error.detail}`).toBeGreaterThan(0);
          for (const e of body.error.errors) expect(typeof (e.source.pointer ?? e.source.parameter)).toBe("string");
        }
      }
    }), { numRuns: runs, endOnFailure: false });
    console.log(`fuzz: ${runs} requests, statuses ${JSON.stringify(Object.fromEntries([...statuses].sort((a, b) => a[0] - b[0])))}`);
    expect([...statuses.keys()].some((s) => s >= 200 && s < 300)).toBe(true);
    expect(statuses.get(400) ?? 0).toBeGreaterThan(0);
  }, 3_600_000);
});
