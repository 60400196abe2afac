// The edge Worker: probe registration and the RIPE Atlas REST API v2 subset (docs/api.md). Exports the DO classes.
import { Router } from "itty-router";
import { STREAM_NAME } from "../durable-objects/stream.ts";
import { controllers, createKey, enrollProbe, flushController, grantCredits, setProbeDisabled, usage } from "./api/admin.ts";
import { listAlerts } from "./api/alerts.ts";
import { bundleData, buildBundleRoute, downloadBundle, getBundle, listBundlesRoute } from "./api/bundles.ts";
import { buildBundle, previousHour } from "./bundles.ts";
import { BUNDLE_TYPES } from "../storage/bundles.ts";
import { credits, creditItems, transfer } from "./api/credits.ts";
import { createApiKey, deleteKey, getKey, listKeys, updateKey } from "./api/keys.ts";
import { requireAdmin } from "./api/auth.ts";
import { ApiError, errorResponse } from "./api/errors.ts";
import {
  createMeasurements, getMeasurement, measurementCost, getParticipationRequest, listMeasurements, listParticipationRequests, participationRequests, patchMeasurement, probeMeasurements, stopMeasurement,
} from "./api/measurements.ts";
import { getGroup, stopGroup } from "./api/measurement-groups.ts";
import { probeArchive, snapshotProbes } from "./probe-archive.ts";
import { addMeasurementTag, removeMeasurementTag, stopTagged, taggedResults } from "./api/measurement-tags.ts";
import { page } from "./api/pagination.ts";
import { getProbe, listProbes, listProbeTags, probePoints } from "./api/probes.ts";
import { downloadRelease, getRollout, haltRollout, startRollout, uploadRelease } from "./api/releases.ts";
import { getLatest, getResults, queryAggregates, queryResults } from "./api/results.ts";
import { getDnsStats, getSample, getTraffic, listSamples } from "./api/datasources.ts";
import { statusCheck } from "./api/status-check.ts";
import { challenge, connect, edgeKey, register } from "./registration.ts";

export { Brain } from "../durable-objects/brain.ts";
export { Controller } from "../durable-objects/controller.ts";
export { Ledger } from "../durable-objects/ledger.ts";
export { Registry } from "../durable-objects/registry.ts";
export { StreamHub } from "../durable-objects/stream.ts";

const router = Router<import("itty-router").IRequest, [Env, ExecutionContext]>()
  // probes
  .get("/probe/v1/edge-key", edgeKey)
  .post("/probe/v1/challenge", challenge)
  .post("/probe/v1/register", register)
  .get("/probe/v1/controllers/:shard", connect)
  .get("/probe/v1/releases/:version", downloadRelease)
  // operators: every /admin path is guarded here, once, before any handler runs (an unknown one is a 403 too)
  .all("/admin/*", (request: Request, env: Env) => { requireAdmin(request, env); })
  .post("/admin/probes", enrollProbe)
  .post("/admin/probes/:id/:action", setProbeDisabled)
  .post("/admin/keys", createKey)
  .post("/admin/accounts/:account/credits", grantCredits)
  .get("/admin/controllers", controllers)
  .get("/admin/usage", usage)
  .post("/admin/controllers/:shard/flush", flushController)
  .put("/admin/releases/:version", uploadRelease)
  .post("/admin/rollouts", startRollout)
  .post("/admin/rollouts/halt", haltRollout)
  .get("/admin/rollouts", getRollout)
  .post("/admin/bundles/build", buildBundleRoute)
  // users: the result stream (RIPE Atlas streaming protocol) and the RIPE Atlas REST API v2
  .get("/stream", (request: Request, env: Env) => env.STREAM.getByName(STREAM_NAME).fetch(request))
  .get("/api/v2/measurements/groups/:group", getGroup)
  .delete("/api/v2/measurements/groups/:group", stopGroup)
  .get("/api/v2/measurements/tags/:tag/results", taggedResults)
  .post("/api/v2/measurements/my-tags/:tag/stop", stopTagged)
  .post("/api/v2/measurements/:id/tags", addMeasurementTag)
  .delete("/api/v2/measurements/:id/tags/:tag", removeMeasurementTag)
  .post("/api/v2/measurements", createMeasurements)
  .post("/api/v2/measurements/cost", measurementCost)
  .post("/api/v2/measurements/my", createMeasurements)
  .get("/api/v2/measurements", listMeasurements)
  .get("/api/v2/measurements/my", listMeasurements)
  .get("/api/v2/measurements/:id", getMeasurement)
  .delete("/api/v2/measurements/:id", stopMeasurement)
  .patch("/api/v2/measurements/:id", patchMeasurement)
  .post("/api/v2/measurements/:id/participation-requests", participationRequests)
  .get("/api/v2/measurements/:id/participation-requests", listParticipationRequests)
  .get("/api/v2/participation-requests/:id", getParticipationRequest)
  .get("/api/v2/measurements/:id/results", getResults)
  .get("/api/v2/measurements/:id/latest", getLatest)
  .get("/api/v2/measurements/:id/status-check", statusCheck)
  .get("/api/v2/results", queryResults)
  .get("/api/v2/aggregates", queryAggregates)
  .get("/api/v2/dnsstats", getDnsStats)
  .get("/api/v2/dnsstats/samples", listSamples)
  .get("/api/v2/dnsstats/samples/:probe/:hour", getSample)
  .get("/api/v2/traffic", getTraffic)
  .get("/api/v2/alerts", listAlerts)
  .get("/api/v2/bundles", listBundlesRoute)
  .get("/api/v2/bundles/:name", getBundle)
  .get("/api/v2/bundles/:name/download", downloadBundle)
  .get("/api/v2/bundles/:name/data", bundleData)
  .get("/api/v2/credits", credits)
  .get("/api/v2/credits/income-items", creditItems)
  .get("/api/v2/credits/expense-items", creditItems)
  .post("/api/v2/credits/transfers", transfer)
  .get("/api/v2/keys", listKeys)
  .post("/api/v2/keys", createApiKey)
  .get("/api/v2/keys/:uuid", getKey)
  .patch("/api/v2/keys/:uuid", updateKey)
  .delete("/api/v2/keys/:uuid", deleteKey)
  .get("/api/v2/probes", listProbes)
  .get("/api/v2/probes/my", listProbes)
  .get("/api/v2/probes/tags", listProbeTags)
  .get("/api/v2/probes/points", probePoints)
  .get("/api/v2/probes/archive", probeArchive)
  .get("/api/v2/probes/:id", getProbe)
  .get("/api/v2/probes/:id/measurements", probeMeasurements)
  // Anchors are not part of Vantage yet: Atlas's lists, empty, so clients that read them keep working.
  .get("/api/v2/anchors", (request: Request) => Response.json(page(new URL(request.url), 0, [])))
  .get("/api/v2/anchor-measurements", (request: Request) => Response.json(page(new URL(request.url), 0, [])))
  .all("*", (request) => {
    throw new ApiError(404, `No such endpoint: ${request.method} ${new URL(request.url).pathname}`);
  });

export default {
  async fetch(request: Request, env: Env, ctx: ExecutionContext): Promise<Response> {
    // Atlas clients call paths with and without the trailing slash; both are served, never redirected.
    const url = new URL(request.url);
    const trimmed = url.pathname.length > 1 && url.pathname.endsWith("/");
    if (trimmed) url.pathname = url.pathname.replace(/\/+$/, "");
    // Behind a TLS-terminating front (npm start's HTTPS port) the Worker sees http://: links it writes (next pages,
    // measurement URLs, a probe's wss:// controller URL) must name the scheme the client used. Only ever upgraded.
    const tls = url.protocol === "http:" && request.headers.get("X-Forwarded-Proto") === "https";
    if (tls) url.protocol = "https:";
    if (trimmed || tls) request = new Request(url.toString(), request);
    try {
      return await router.fetch(request, env, ctx);
    } catch (e) {
      if (e instanceof ApiError) return errorResponse(e);
      console.error(`unhandled error on ${request.method} ${url.pathname}:`, e);
      return errorResponse(new ApiError(500, "Internal error; it has been logged."));
    }
  },
  /** The hourly Cron Trigger: the previous hour's bundles, one per result type. */
  async scheduled(controller: ScheduledController, env: Env, ctx: ExecutionContext): Promise<void> {
    const { date, hour } = previousHour(controller.scheduledTime);
    ctx.waitUntil(Promise.all(BUNDLE_TYPES.map((type) => buildBundle(env, type, date, hour)
      .catch((e: unknown) => console.error(`bundle ${type} ${date}T${hour}: ${String(e)}`)))));
    // The probe archive's snapshot of today, on the first run of the day (or the next that finds none).
    const today = new Date(controller.scheduledTime).toISOString().slice(0, 10);
    ctx.waitUntil(snapshotProbes(env, today).catch((e: unknown) => console.error(`probe archive ${today}: ${String(e)}`)));
  },
} satisfies ExportedHandler<Env>;
