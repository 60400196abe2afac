// Controller shards: one Controller DO per region shard, created with that region's location hint.
// A probe is placed on the nearest shard that is not full; the brain walks shards in the order a probe source
// (an Atlas area, a country…) suggests.
import type { AREAS } from "../protocol/index.ts";

export type Shard = { name: string; hint: DurableObjectLocationHint; lat: number; lon: number };

/** Fixed shard list. Adding shards is safe; renaming or removing one orphans its probes' assignments. */
export const SHARDS: readonly Shard[] = [
  { name: "wnam-0", hint: "wnam", lat: 37, lon: -120 },
  { name: "enam-0", hint: "enam", lat: 40, lon: -77 },
  { name: "sam-0", hint: "sam", lat: -23, lon: -46 },
  { name: "weur-0", hint: "weur", lat: 50, lon: 5 },
  { name: "eeur-0", hint: "eeur", lat: 52, lon: 21 },
  { name: "me-0", hint: "me", lat: 25, lon: 55 },
  { name: "afr-0", hint: "afr", lat: -26, lon: 28 },
  { name: "apac-0", hint: "apac", lat: 1.3, lon: 103.8 },
  { name: "oc-0", hint: "oc", lat: -33.9, lon: 151 },
];

export function shardByName(name: string): Shard | undefined {
  return SHARDS.find((s) => s.name === name);
}

/** Rough continent centroids, used when a probe's coordinates are unknown. */
const CONTINENT_CENTRE: Record<string, [number, number]> = {
  EU: [50, 10], NA: [40, -95], SA: [-15, -60], AS: [30, 100], OC: [-25, 140], AF: [5, 20], AN: [-80, 0], ME: [27, 45],
};

// ISO 3166 alpha-2 → continent (Middle East split out, as Cloudflare's region hints do).
const COUNTRIES: Record<string, string> = Object.fromEntries(
  Object.entries({
    EU: "AD AL AT AX BA BE BG BY CH CZ DE DK EE ES FI FO FR GB GG GI GR HR HU IE IM IS IT JE LI LT LU LV MC MD ME MK MT NL NO PL PT RO RS RU SE SI SJ SK SM UA VA XK",
    NA: "AG AI AW BB BL BM BQ BS BZ CA CR CU CW DM DO GD GL GP GT HN HT JM KN KY LC MF MQ MS MX NI PA PM PR SV SX TC TT US VC VG VI",
    SA: "AR BO BR CL CO EC FK GF GY PE PY SR UY VE",
    ME: "AE BH CY IL IQ IR JO KW LB OM PS QA SA SY TR YE",
    AS: "AF AM AZ BD BN BT CN GE HK ID IN JP KG KH KP KR KZ LA LK MM MN MO MV MY NP PH PK SG TH TJ TL TM TW UZ VN",
    OC: "AS AU CK FJ FM GU KI MH MP NC NF NR NU NZ PF PG PN PW SB TK TO TV UM VU WF WS",
    AF: "AO BF BI BJ BW CD CF CG CI CM CV DJ DZ EG EH ER ET GA GH GM GN GQ GW KE KM LR LS LY MA MG ML MR MU MW MZ NA NE NG RE RW SC SD SH SL SN SO SS ST SZ TD TG TN TZ UG YT ZA ZM ZW",
  }).flatMap(([continent, list]) => list.split(" ").map((cc) => [cc, continent])),
);

export type Location = {
  latitude?: number | string | null;
  longitude?: number | string | null;
  country?: string | null;
  continent?: string | null;
};

/** Best coordinates we can find for a location: explicit lat/lon, else the country's or continent's centre. */
export function coordinates(loc: Location): [number, number] | null {
  const lat = Number(loc.latitude), lon = Number(loc.longitude);
  if (loc.latitude != null && loc.longitude != null && Number.isFinite(lat) && Number.isFinite(lon)) return [lat, lon];
  const continent = (loc.country && COUNTRIES[loc.country.toUpperCase()]) || loc.continent?.toUpperCase();
  return (continent && CONTINENT_CENTRE[continent]) || null;
}

/** Great-circle distance in km (haversine, mean Earth radius). */
export function distanceKm([lat1, lon1]: [number, number], [lat2, lon2]: [number, number]): number {
  const rad = Math.PI / 180;
  const a = Math.sin(((lat2 - lat1) * rad) / 2) ** 2 +
    Math.cos(lat1 * rad) * Math.cos(lat2 * rad) * Math.sin(((lon2 - lon1) * rad) / 2) ** 2;
  return 12_742 * Math.asin(Math.sqrt(a));
}

/** Shards ordered nearest first. With no usable location the fixed order stands. */
export function shardsByDistance(loc: Location): Shard[] {
  const here = coordinates(loc);
  if (!here) return [...SHARDS];
  return [...SHARDS].sort((a, b) => distanceKm(here, [a.lat, a.lon]) - distanceKm(here, [b.lat, b.lon]));
}

const AREA_SHARDS: Record<(typeof AREAS)[number], string[]> = {
  WW: SHARDS.map((s) => s.name),
  West: ["wnam-0", "enam-0", "sam-0"],
  "North-Central": ["weur-0", "eeur-0"],
  "South-Central": ["afr-0", "me-0", "weur-0", "eeur-0"],
  "North-East": ["eeur-0", "apac-0"],
  "South-East": ["apac-0", "oc-0"],
};

/** The shards a probe source should ask, in order. Area sources ask only their region's shards. */
export function shardsForSource(source: { type: string; value: string }): Shard[] {
  if (source.type === "area" || source.type === "region") {
    return (AREA_SHARDS[source.value as keyof typeof AREA_SHARDS] ?? []).map((n) => shardByName(n)!);
  }
  if (source.type === "country") return shardsByDistance({ country: source.value });
  return [...SHARDS];
}

/** The controller DO of a shard, created (once) near its region. */
export function controllerStub<T extends Rpc.DurableObjectBranded | undefined>(ns: DurableObjectNamespace<T>, shard: Shard): DurableObjectStub<T> {
  return ns.get(ns.idFromName(shard.name), { locationHint: shard.hint });
}
