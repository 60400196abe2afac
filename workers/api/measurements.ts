// /api/v2/measurements/: create, list, read, stop — Atlas's request and object shapes.
import type { IRequest } from "itty-router";
import { z } from "zod";
import type { MeasurementRow, ParticipationRecord, ParticipationRequest } from "../../durable-objects/brain-types.ts";
import type { Participant } from "../../durable-objects/probe-attachment.ts";
import { requestCosts } from "../../durable-objects/measurement-cost.ts";
import { BRAIN_NAME, flag, REGISTRY_NAME } from "../../durable-objects/env.ts";
import {
  atlasCreateBody, builtinDescription, builtinType, CreateMeasurements, dropNulls, creditsPerResult, MEASUREMENT_TYPES, ProbeSource,
  type Definition, isIPv4, isIPv6, parseAddress, specOf, targetRefusal, STATUS, toUnix,
} from "../../protocol/index.ts";
import { apiKey, type Caller, requireKey } from "./auth.ts";
import { ApiError, fieldError, fieldErrors, intListParam, intParam, parameterError, readJson, validationError } from "./errors.ts";
import { boolParam, comparisonParamNames, listParam, onlyKnownParams, selectFields, sortParam, timeBounds } from "./filters.ts";
import { page, pageOf } from "./pagination.ts";

const STATUS_NAMES = Object.fromEntries(Object.values(STATUS).map((s) => [s.id, s.name]));

export function measurementObject(row: MeasurementRow, origin: string): Record<string, unknown> {
  const def = JSON.parse(row.definition) as Definition;
  const spec = specOf(def);
  const participants = JSON.parse(row.participants) as Participant[];
  const literal = def.target !== undefined && (isIPv4(def.target) || isIPv6(def.target));
  const oneoff = row.is_oneoff === 1;
  return {
    ...spec,
    id: row.id,
    type: row.type,
    af: def.af,
    target: def.target ?? null,
    target_ip: literal ? def.target : null,
    target_asn: null,
    resolved_ips: literal ? [def.target] : null,
    resolve_on_probe: def.resolve_on_probe,
    description: def.description,
    interval: row.interval,
    spread: row.spread,
    is_oneoff: oneoff,
    is_public: def.is_public ?? true,
    is_all_scheduled: row.status_id !== STATUS.specified.id,
    in_wifi_group: false,
    group: row.group_id === null ? null : `${origin}/api/v2/measurements/groups/${row.group_id}/`,
    group_id: row.group_id,
    tags: def.tags ?? [],
    creation_time: row.creation_time,
    start_time: row.start_time,
    stop_time: row.stop_time,
    status: { id: row.status_id, name: STATUS_NAMES[row.status_id], when: row.status_when },
    probes_requested: row.probes_requested,
    probes_scheduled: row.probes_scheduled,
    participant_count: participants.length,
    probes: participants.map((p) => ({ id: p.probe_id, url: `${origin}/api/v2/probes/${p.probe_id}/` })),
    credits_per_result: creditsPerResult(spec, oneoff),
    estimated_results_per_day: oneoff ? participants.length : Math.round((86_400 / (row.interval ?? 86_400)) * participants.length),
    result: `${origin}/api/v2/measurements/${row.id}/results/`,
  };
}

/**
 * Refuses targets of the wrong family and, unless the edge runs in local mode, targets that are not public: an
 * address in any spelling is judged by what it reaches (protocol/address-policy.ts), a name local to a network is
 * refused, and any other name is judged again on the probe once it has resolved it.
 */
export function checkTargets(req: CreateMeasurements, env: Pick<Env, "ALLOW_PRIVATE_TARGETS">): void {
  const allowPrivate = flag(env.ALLOW_PRIVATE_TARGETS);
  req.definitions.forEach((d, i) => {
    if (d.target === undefined) return;
    const literal = parseAddress(d.target);
    if (literal && literal.family !== d.af) {
      throw fieldError(`/definitions/${i}/af`, `af ${d.af} does not match the address family of target ${d.target} (IPv${literal.family}).`);
    }
    const refusal = allowPrivate ? null : targetRefusal(d.target);
    // inet_aton's other spellings (127.1, 2130706433, 0x7f.1, 0177.0.0.1) are refused whatever they reach: nobody
    // writes them by mistake, and what a probe reports (dst_addr) would not match what was asked.
    if (literal?.family === 4 && literal.address !== d.target) {
      throw fieldError(`/definitions/${i}/target`, `${d.target} is an unusual spelling of ${literal.address}${refusal ? ` (${refusal})` : ""}; write the address as ${literal.address}.`);
    }
    if (refusal) throw fieldError(`/definitions/${i}/target`, `Private, loopback, link-local and other special-purpose targets are not allowed: ${refusal}.`);
  });
}

function checkTimes(req: CreateMeasurements): void {
  const now = Math.floor(Date.now() / 1000);
  req.definitions.forEach((d, i) => {
    const oneoff = d.is_oneoff ?? req.is_oneoff ?? false;
    if (d.is_oneoff !== undefined && req.is_oneoff !== undefined && d.is_oneoff !== req.is_oneoff) {
      throw fieldError(`/definitions/${i}/is_oneoff`, "Disagrees with the top-level is_oneoff.");
    }
    const start = d.start_time ?? req.start_time;
    const stop = d.stop_time ?? req.stop_time;
    if (oneoff && stop !== undefined) throw fieldError(d.stop_time !== undefined ? `/definitions/${i}/stop_time` : "/stop_time", "A one-off measurement cannot have a stop_time.");
    if (oneoff && d.interval !== undefined) throw fieldError(`/definitions/${i}/interval`, "A one-off measurement has no interval.");
    if (stop !== undefined) {
      const s = toUnix(stop);
      if (s <= Math.max(now, start === undefined ? now : toUnix(start))) {
        throw fieldError(d.stop_time !== undefined ? `/definitions/${i}/stop_time` : "/stop_time", "stop_time must be later than start_time and now.");
      }
    }
    if (start !== undefined && toUnix(start) > now + 366 * 86_400) {
      throw fieldError(d.start_time !== undefined ? `/definitions/${i}/start_time` : "/start_time", "start_time is more than a year ahead.");
    }
  });
}

/** A create body read and checked as Atlas would (every refusal a 400 naming its field). */
async function createRequest(request: IRequest, env: Env): Promise<CreateMeasurements> {
  const body = await readJson(request);
  if (typeof body !== "object" || body === null || Array.isArray(body)) throw fieldError("", "The body must be a JSON object.");
  const atlas = atlasCreateBody(body as Record<string, unknown>);
  if (atlas.unsupported.length) throw fieldErrors(atlas.unsupported);
  const parsed = CreateMeasurements.safeParse(atlas.body);
  if (!parsed.success) throw validationError(parsed.error);
  checkTargets(parsed.data, env);
  checkTimes(parsed.data);
  return parsed.data;
}

export async function createMeasurements(request: IRequest, env: Env): Promise<Response> {
  const { account } = await requireKey(request, env, "create_measurements");
  const req = await createRequest(request, env);
  const created = await env.BRAIN.getByName(BRAIN_NAME).create(req, account);
  if (!created.ok) throw refusalError(created);
  return Response.json(created.warnings.length ? { measurements: created.ids, warnings: created.warnings } : { measurements: created.ids }, { status: 201 });
}

/**
 * POST /api/v2/measurements/cost/ (Vantage; Atlas's web form prices a request in the browser): the body a create
 * would take, answered with what creating it would set aside, what the account has free, and the warnings creation
 * would give — or the very error creation would give. Nothing is created, reserved or counted toward the rate limit.
 */
export async function measurementCost(request: IRequest, env: Env): Promise<Response> {
  const { account } = await requireKey(request, env, "create_measurements");
  const req = await createRequest(request, env);
  const [preview, balance] = await Promise.all([env.BRAIN.getByName(BRAIN_NAME).preview(req, account), env.LEDGER.getByName(account).balance()]);
  if (preview.refusal) throw refusalError(preview.refusal);
  // A definition that takes an earlier answer costs nothing.
  const definitions = requestCosts(req, Math.floor(Date.now() / 1000))
    .map((c, i) => ({ ...c, ...(preview.reuses[i] === null ? {} : { credits: 0, reuses: preview.reuses[i] }) }));
  const credits = definitions.reduce((n, d) => n + d.credits, 0);
  return Response.json({ credits, available: balance.available, enough: credits <= balance.available, definitions, warnings: preview.warnings });
}

/** The brain's refusal as an Atlas error (naming the field where it names one, with Retry-After when rate limited). */
function refusalError(r: { status: number; detail: string; pointer?: string; retry_after?: number }): ApiError {
  return new ApiError(r.status, r.detail, r.pointer ? [{ source: { pointer: r.pointer }, detail: r.detail }] : [], r.retry_after ? { "Retry-After": String(r.retry_after) } : {});
}

const MEASUREMENT_TIMES = ["start_time", "stop_time", "creation_time"] as const;
const MEASUREMENT_FILTERS = ["id", "id__in", "status", "status__in", "type", "is_oneoff", "is_public", "mine", "af", "target", "target__contains",
  "target__startswith", "description", "description__contains", "description__startswith", "search", "tags", "group_id", ...comparisonParamNames(MEASUREMENT_TIMES)];

/** GET /api/v2/probes/{id}/measurements/: the measurements a probe takes part in, with the list's filters. */
export async function probeMeasurements(request: IRequest, env: Env): Promise<Response> {
  const probe = Number(request.params.id);
  if (!Number.isSafeInteger(probe) || probe <= 0) throw new ApiError(404, `No probe with id "${request.params.id}".`);
  if (!(await env.REGISTRY.getByName(REGISTRY_NAME).probe(probe))) throw new ApiError(404, `No probe with id ${probe}.`);
  return measurementList(request, env, probe);
}

/** GET /api/v2/measurements/ and /my/. (The router passes its context third: not a probe id.) */
export function listMeasurements(request: IRequest, env: Env): Promise<Response> {
  return measurementList(request, env);
}

async function measurementList(request: IRequest, env: Env, probe?: number): Promise<Response> {
  const url = new URL(request.url);
  onlyKnownParams(url, MEASUREMENT_FILTERS);
  const key = await apiKey(request, env);
  const mine = url.pathname.endsWith("/my") || boolParam(url, "mine") === true;
  if (mine && !key) throw new ApiError(403, "Authentication credentials were not provided.");
  // Atlas takes `id` as one id or a comma list (as `id__in`).
  const ids = intListParam(url, "id__in") ?? intListParam(url, "id");
  const status = intListParam(url, "status__in") ?? (url.searchParams.has("status") ? intListParam(url, "status") : undefined);
  const af = intParam(url, "af", 4, 6);
  if (af !== undefined && af !== 4 && af !== 6) throw parameterError("af", "Enter 4 or 6.");
  const type = url.searchParams.get("type") || undefined;
  if (type !== undefined && !(MEASUREMENT_TYPES as readonly string[]).includes(type)) throw parameterError("type", `Enter one of ${MEASUREMENT_TYPES.join(", ")}.`);
  const sort = sortParam(url, ["id", ...MEASUREMENT_TIMES], "-id");
  const { offset, limit } = pageOf(url);
  const text = (name: string) => url.searchParams.get(name) || undefined;
  const { count, rows } = await env.BRAIN.getByName(BRAIN_NAME).list({
    ids, status, type, af, is_oneoff: boolParam(url, "is_oneoff"), is_public: boolParam(url, "is_public"), owner: mine ? key!.account : undefined,
    target: text("target"), target_contains: text("target__contains"), target_startswith: text("target__startswith"),
    description: text("description"), description_contains: text("description__contains"), description_startswith: text("description__startswith"),
    search: text("search"), tags: listParam(url, "tags"), times: timeBounds(url, MEASUREMENT_TIMES), sort, probe_id: probe,
    group_id: intParam(url, "group_id", 1),
    // Other accounts' private measurements are not listed (their targets are their owners' business).
    visible_to: key?.account ?? null,
  }, offset, limit);
  return Response.json(page(url, count, selectFields(url, rows.map((r) => measurementObject(r, url.origin)))));
}

/** A private measurement (its definition, results) is its owner's: 403 unless the request carries an owning key. */
/** Refuses a private measurement to anyone but its owner; the caller's key, if one was sent. */
export async function requireVisible(request: Request, env: Env, row: MeasurementRow): Promise<Caller | null> {
  const caller = await apiKey(request, env);
  if ((JSON.parse(row.definition) as Definition).is_public === false && caller?.account !== row.owner) {
    throw new ApiError(403, `Measurement ${row.id} is not public: send a key of the account that owns it.`);
  }
  return caller;
}

export function measurementId(request: IRequest): number {
  const id = Number(request.params.id);
  if (!Number.isSafeInteger(id) || id <= 0) throw new ApiError(404, `No measurement with id "${request.params.id}".`);
  return id;
}

/** A built-in measurement as an Atlas measurement object: every probe runs it, each towards its own targets. */
export function builtinObject(id: number, origin: string): Record<string, unknown> {
  const type = builtinType(id)!;
  return {
    id, type, af: 4, target: null, target_ip: null, target_asn: null, resolved_ips: null, resolve_on_probe: true,
    description: builtinDescription(id), interval: type === "traceroute" ? 900 : 240, spread: null, is_oneoff: false, is_public: true,
    is_all_scheduled: true, in_wifi_group: false, group: null, group_id: null, tags: ["builtin"], creation_time: 0, start_time: 0,
    stop_time: null, status: { id: STATUS.ongoing.id, name: STATUS.ongoing.name, when: 0 }, probes_requested: null,
    probes_scheduled: null, participant_count: null, credits_per_result: 0, estimated_results_per_day: null,
    result: `${origin}/api/v2/measurements/${id}/results/`,
  };
}

export async function getMeasurement(request: IRequest, env: Env): Promise<Response> {
  const id = measurementId(request);
  if (builtinType(id)) return Response.json(builtinObject(id, new URL(request.url).origin));
  const brain = env.BRAIN.getByName(BRAIN_NAME);
  const row = await brain.get(id);
  if (!row) throw new ApiError(404, `No measurement with id ${id}.`);
  const caller = await requireVisible(request, env, row);
  const object = measurementObject(row, new URL(request.url).origin);
  // The caller's own tags (cousteau's MeasurementTagger) beside those the definition was created with.
  const mine = caller ? await brain.tagsOn(id, caller.account) : [];
  if (mine.length) object.tags = [...new Set([...(object.tags as string[]), ...mine])];
  return Response.json(object);
}

export async function stopMeasurement(request: IRequest, env: Env): Promise<Response> {
  const { account } = await requireKey(request, env, "stop_measurements");
  const id = measurementId(request);
  const outcome = await env.BRAIN.getByName(BRAIN_NAME).stop(id, account);
  if (outcome === "not-found") throw new ApiError(404, `No measurement with id ${id}.`);
  if (outcome === "not-owner") throw new ApiError(403, `Measurement ${id} belongs to another account.`);
  return new Response(null, { status: 204 });
}

const Patch = z.strictObject({
  description: z.string().max(256, "Ensure this field has no more than 256 characters.").optional(),
  is_public: z.boolean().optional(),
});

/** PATCH /api/v2/measurements/{id}/: `description`, `is_public` (false → true only), as Atlas allows. */
export async function patchMeasurement(request: IRequest, env: Env): Promise<Response> {
  const { account } = await requireKey(request, env, "create_measurements");
  const id = measurementId(request);
  const body = await readJson(request);
  if (typeof body !== "object" || body === null || Array.isArray(body)) throw fieldError("", "The body must be a JSON object.");
  const parsed = Patch.safeParse(Object.fromEntries(Object.entries(body).filter(([, v]) => v !== null)));
  if (!parsed.success) throw validationError(parsed.error);
  const outcome = await env.BRAIN.getByName(BRAIN_NAME).patch(id, account, parsed.data);
  if (outcome === "not-found") throw new ApiError(404, `No measurement with id ${id}.`);
  if (outcome === "not-owner") throw new ApiError(403, `Measurement ${id} belongs to another account.`);
  if (outcome === "stays-public") throw fieldError("/is_public", "A public measurement cannot be made private: its results have been public.");
  const row = await env.BRAIN.getByName(BRAIN_NAME).get(id);
  return Response.json(measurementObject(row!, new URL(request.url).origin));
}

const Removal = z.object({
  action: z.literal("remove"), type: z.literal("probes", 'Probes are removed by id: type must be "probes".'),
  value: z.string().regex(/^\d+(,\d+)*$/, "value must be a comma-separated list of probe ids."), requested: z.number().int().optional(),
}).strict();
const ParticipationList = z.array(z.object({ action: z.enum(["add", "remove"], 'action must be "add" or "remove".') }).passthrough())
  .min(1, "At least one request is needed.").max(100);

/** Each request checked against its action's shape, errors pointing into it (`/0/type`). */
function participationRequestsOf(body: unknown): ParticipationRequest[] {
  const list = ParticipationList.safeParse(body);
  if (!list.success) throw validationError(list.error);
  return list.data.map((raw, i) => {
    // As in a create body: null is "not given", and a field not known is refused by name, never dropped.
    const r = dropNulls(raw);
    if (r.action === "remove") {
      const parsed = Removal.safeParse(r);
      if (!parsed.success) throw validationError(parsed.error, `/${i}`);
      return parsed.data;
    }
    const { action, ...source } = r;
    const parsed = ProbeSource.safeParse(source);
    if (!parsed.success) throw validationError(parsed.error, `/${i}`);
    return { action, ...parsed.data } as ParticipationRequest;
  });
}

/**
 * POST /measurements/{id}/participation-requests/ (Atlas's body: `[{"action":"add"|"remove","type","value","requested"}]`):
 * adds probes from sources (their first day's cost set aside first) or removes probes by id. Answers 201
 * `{"request_ids":[one per request, as Atlas],"added":[probe ids],"removed":[probe ids]}`.
 */
export async function participationRequests(request: IRequest, env: Env): Promise<Response> {
  const { account } = await requireKey(request, env, "create_measurements");
  const id = measurementId(request);
  const requests = participationRequestsOf(await readJson(request));
  const out = await env.BRAIN.getByName(BRAIN_NAME).participate(id, account, requests);
  if (!out.ok) throw refusalError(out);
  return Response.json({ request_ids: out.request_ids, added: out.added, removed: out.removed }, { status: 201 });
}

function participationObject(origin: string, r: ParticipationRecord) {
  return { ...r, self: `${origin}/api/v2/participation-requests/${r.id}/` };
}

/** GET /measurements/{id}/participation-requests/: its probe sources at creation, then every later request. */
export async function listParticipationRequests(request: IRequest, env: Env): Promise<Response> {
  const url = new URL(request.url);
  const id = measurementId(request);
  const brain = env.BRAIN.getByName(BRAIN_NAME);
  const row = await brain.get(id);
  if (!row) throw new ApiError(404, `No measurement with id ${id}.`);
  // Its sources say where it measures from: a private measurement's are its owner's, as its definition is.
  await requireVisible(request, env, row);
  const { offset, limit } = pageOf(url);
  const { count, requests } = await brain.participationRequests({ msm_id: id }, offset, limit);
  return Response.json(page(url, count, requests.map((r) => participationObject(url.origin, r))));
}

/** GET /participation-requests/{id}/ */
export async function getParticipationRequest(request: IRequest, env: Env): Promise<Response> {
  const id = Number(request.params.id);
  const found = Number.isSafeInteger(id) && id > 0 ? (await env.BRAIN.getByName(BRAIN_NAME).participationRequests({ id }, 0, 1)).requests[0] : undefined;
  if (!found) throw new ApiError(404, `No participation request with id ${request.params.id}.`);
  const row = await env.BRAIN.getByName(BRAIN_NAME).get(found.measurement);
  if (row) await requireVisible(request, env, row);
  return Response.json(participationObject(new URL(request.url).origin, found));
}
