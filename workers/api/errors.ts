// Atlas's error body: {"error":{"status","code","title","detail","errors":[{"source":{"pointer"|"parameter"},"detail"}]}}.
import type { $ZodError } from "zod/v4/core";

export type ErrorItem = { source: { pointer: string } | { parameter: string }; detail: string };

const TITLES: Record<number, string> = {
  400: "Bad Request", 401: "Unauthorized", 402: "Payment Required", 403: "Forbidden", 404: "Not Found", 405: "Method Not Allowed",
  409: "Conflict", 413: "Payload Too Large", 415: "Unsupported Media Type", 426: "Upgrade Required", 429: "Too Many Requests",
  500: "Internal Server Error", 503: "Service Unavailable",
};
/** Atlas's legacy numeric codes where it has them (102 bad request, 104 authentication), else the status. */
const CODES: Record<number, number> = { 400: 102, 403: 104 };

export class ApiError extends Error {
  readonly status: number;
  readonly errors: ErrorItem[];
  readonly headers: Record<string, string>;
  constructor(status: number, detail: string, errors: ErrorItem[] = [], headers: Record<string, string> = {}) {
    super(detail);
    this.status = status;
    this.errors = errors;
    this.headers = headers;
  }
}

export function errorResponse(e: ApiError): Response {
  const body = {
    error: { status: e.status, code: CODES[e.status] ?? e.status, title: TITLES[e.status] ?? "Error", detail: e.message, errors: e.errors },
  };
  return Response.json(body, { status: e.status, headers: e.headers });
}

const pointerOf = (path: PropertyKey[]) => path.map((p) => `/${String(p).replace(/~/g, "~0").replace(/\//g, "~1")}`).join("");

/**
 * A zod failure as a 400 naming each offending field by JSON pointer; a field the schema does not know is named
 * itself (strict schemas: nothing a client sends is silently dropped).
 */
export function validationError(error: $ZodError, prefix = ""): ApiError {
  const errors = error.issues.flatMap((i) => i.code === "unrecognized_keys"
    ? i.keys.map((k) => ({ source: { pointer: `${prefix}${pointerOf([...i.path, k])}` }, detail: "Vantage does not support this field (docs/api.md lists where it differs from Atlas); nothing was created." }))
    : [{
      source: { pointer: `${prefix}${pointerOf(i.path)}` || "/" },
      detail: i.code === "invalid_type" && i.input === undefined ? "This field is required." : i.message,
    }]);
  const first = errors[0];
  return new ApiError(400, first ? `${first.source.pointer}: ${first.detail}` : "Invalid input.", errors);
}

/** Several fields refused at once: a 400 naming each. */
export function fieldErrors(list: { pointer: string; detail: string }[]): ApiError {
  return new ApiError(400, `${list[0]!.pointer}: ${list[0]!.detail}`, list.map((e) => ({ source: { pointer: e.pointer }, detail: e.detail })));
}

export function fieldError(pointer: string, detail: string): ApiError {
  return new ApiError(400, `${pointer}: ${detail}`, [{ source: { pointer }, detail }]);
}

export function parameterError(parameter: string, detail: string): ApiError {
  return new ApiError(400, `${parameter}: ${detail}`, [{ source: { parameter }, detail }]);
}

export const MAX_BODY_BYTES = 256 * 1024;

/** Reads a JSON request body: refuses other content types, oversized bodies and malformed JSON with a 4xx. */
export async function readJson(request: Request, limit = MAX_BODY_BYTES): Promise<unknown> {
  const type = request.headers.get("Content-Type") ?? "";
  if (!/^application\/json\b/i.test(type)) {
    throw new ApiError(415, `Content-Type must be application/json (got ${type ? `"${type}"` : "none"}).`);
  }
  const declared = Number(request.headers.get("Content-Length") ?? "0");
  if (declared > limit) throw new ApiError(413, `Request body is ${declared} bytes; the limit is ${limit}.`);
  const text = await readBody(request, limit);
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new ApiError(400, `JSON parse error - ${(e as Error).message}`, [{ source: { pointer: "" }, detail: "Malformed JSON." }]);
  }
}

/**
 * The body as text, read a chunk at a time and cut off as soon as it passes `limit` bytes: a chunked body (no
 * Content-Length) or one whose Content-Length lies is never held whole beyond the limit. Malformed UTF-8 is refused.
 */
async function readBody(request: Request, limit: number): Promise<string> {
  if (!request.body) return "";
  const reader = request.body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.byteLength;
    if (size > limit) {
      await reader.cancel().catch(() => {});
      throw new ApiError(413, `Request body exceeds the limit of ${limit} bytes.`);
    }
    chunks.push(value);
  }
  const body = new Uint8Array(size);
  let at = 0;
  for (const c of chunks) { body.set(c, at); at += c.byteLength; }
  try {
    return new TextDecoder("utf-8", { fatal: true, ignoreBOM: false }).decode(body);
  } catch {
    throw new ApiError(400, "The request body is not valid UTF-8.", [{ source: { pointer: "" }, detail: "Malformed UTF-8." }]);
  }
}

export function intParam(url: URL, name: string, lo = 0, hi = Number.MAX_SAFE_INTEGER): number | undefined {
  const v = url.searchParams.get(name);
  if (v === null || v === "") return undefined;
  const n = Number(v);
  if (!Number.isInteger(n) || n < lo || n > hi) throw parameterError(name, `Enter a whole number between ${lo} and ${hi}.`);
  return n;
}

export function intListParam(url: URL, name: string): number[] | undefined {
  const v = url.searchParams.get(name);
  if (v === null || v === "") return undefined;
  const out: number[] = [];
  for (const part of v.split(",")) {
    const range = part.match(/^(\d+)-(\d+)$/);
    if (range) {
      const [lo, hi] = [Number(range[1]), Number(range[2])];
      if (hi < lo || hi - lo > 10_000) throw parameterError(name, `Range ${part} is empty or too long.`);
      for (let i = lo; i <= hi; i++) out.push(i);
    } else if (/^\d+$/.test(part)) out.push(Number(part));
    else throw parameterError(name, `Enter comma-separated whole numbers or ranges (got "${part}").`);
  }
  return out;
}
