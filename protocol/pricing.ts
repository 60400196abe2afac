// What results cost, in credits: used by the brain (reservations, charges) and the API (credits_per_result).
import type { MeasurementSpec } from "./atlas.ts";

/**
 * Credits per result, Atlas's cost table: ping packets × (⌊size/1500⌋ + 1), traceroute ten times that; DNS 10 over
 * UDP, 20 over TCP; sslcert 10.
 * Atlas publishes no price for NTP and HTTP: NTP costs as a ping of the same packet count, HTTP as an sslcert.
 * One-offs cost double.
 */
export function creditsPerResult(spec: MeasurementSpec, isOneoff: boolean): number {
  const base = (() => {
    switch (spec.type) {
      case "ping": return spec.packets * (Math.floor(spec.size / 1500) + 1);
      case "traceroute": return 10 * spec.packets * (Math.floor(spec.size / 1500) + 1);
      case "dns": return spec.protocol === "TCP" ? 20 : 10;
      case "ntp": return spec.packets;
      case "http":
      case "sslcert": return 10;
    }
  })();
  return base * (isOneoff ? 2 : 1);
}

/**
 * A probe's host earns this share of what each result it delivers costs (in thousandths of a credit per credit):
 * 10 %, on top of 15 credits per connected minute.
 */
export const HOST_SHARE_MILLI_PER_CREDIT = 100;
