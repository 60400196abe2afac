// A DNS result in words: the answer's code and records, decoded from Atlas's `abuf` (the DNS message as it arrived,
// base64) with @leichtgewicht/dns-packet (the edge reads abufs with it too); an error as the probe named it. What a
// server answers is anyone's text: the page shows it as text (dom.ts), never as markup.
import { decode } from "@leichtgewicht/dns-packet";

type Exchange = { result?: { rt?: number; abuf?: string; ANCOUNT?: number }; error?: Record<string, unknown> };
export type DnsResult = Exchange & { resultset?: Exchange[] };

/** One record as a line of a zone file, roughly: name, type and data. */
function record(a: { name: string; type: string; data?: unknown }): string {
  const data = a.data;
  const text = Array.isArray(data) ? data.map((d) => (d instanceof Uint8Array ? new TextDecoder().decode(d) : String(d))).join(" ")
    : data instanceof Uint8Array ? new TextDecoder().decode(data)
    : typeof data === "object" && data !== null ? JSON.stringify(data) : String(data ?? "");
  return `${a.name} ${a.type} ${text}`;
}

export function dnsSummary(r: DnsResult): string {
  const one = r.resultset?.[0] ?? r;
  if (one.error) return `no answer (${Object.entries(one.error).map(([k, v]) => `${k} ${String(v)}`).join(", ")})`;
  const rt = one.result?.rt !== undefined ? `${one.result.rt.toFixed(2)} ms` : "";
  if (!one.result?.abuf) return `answered in ${rt}`;
  try {
    const packet = decode(Uint8Array.from(atob(one.result.abuf), (c) => c.charCodeAt(0)));
    const answers = (packet.answers ?? []).map((a) => record(a as { name: string; type: string; data?: unknown }));
    return `${packet.rcode ?? "?"} in ${rt}${answers.length ? `: ${answers.join("; ")}` : ", no records"}`;
  } catch (e) {
    return `an answer that does not decode (${(e as Error).message})`;
  }
}
