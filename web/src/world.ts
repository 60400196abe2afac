// The world's countries (Natural Earth 1:110m, from world-atlas, served by the edge itself: no tile server), loaded
// once, and what the console draws on them: a projection fitted to a canvas, and a country by its ISO 3166 code
// (world-atlas names countries by their numeric code; probes and Atlas by the two-letter one).
import { geoNaturalEarth1, type GeoProjection } from "d3-geo";
import countryCodes from "i18n-iso-countries/codes.json";
import { feature } from "topojson-client";
import type { GeometryCollection, Topology } from "topojson-specification";

export type Country = GeoJSON.Feature<GeoJSON.Geometry, { name: string }> & { id?: string };

let countries: Promise<GeoJSON.FeatureCollection<GeoJSON.Geometry, { name: string }>> | null = null;
export function world(): Promise<GeoJSON.FeatureCollection<GeoJSON.Geometry, { name: string }>> {
  countries ??= fetch("/countries-110m.json").then((r) => r.json()).then((t: Topology) =>
    feature(t, t.objects.countries as GeometryCollection) as unknown as GeoJSON.FeatureCollection<GeoJSON.Geometry, { name: string }>);
  return countries;
}

/** Two-letter ISO 3166 code → world-atlas's numeric id ("NL" → "528"), from i18n-iso-countries' table. */
const NUMERIC = new Map((countryCodes as [string, string, string, string][]).map(([a2, , num]) => [a2, num]));
export function numericCode(alpha2: string): string | undefined {
  return NUMERIC.get(alpha2.toUpperCase());
}

/** A Natural Earth projection of the whole world, fitted to a canvas's size. */
export function fitted(width: number, height: number): GeoProjection {
  return geoNaturalEarth1().fitSize([width, height], { type: "Sphere" });
}
