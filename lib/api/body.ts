/**
 * Reads request bodies with a size cap enforced while streaming, so a huge
 * body is refused without being buffered whole.
 *
 * @module
 */
import { ApiError, badRequest } from "./errors.ts";

/** Reads at most `limit` bytes of `request`'s body; more → 413. */
export async function readBodyCapped(request: Request, limit: number): Promise<Uint8Array> {
  const declared = Number(request.headers.get("content-length") ?? "NaN");
  if (Number.isFinite(declared) && declared > limit) throw new ApiError("api_payload_too_large");
  if (!request.body) return new Uint8Array(0);
  const chunks: Uint8Array[] = [];
  let size = 0;
  const reader = request.body.getReader();
  while (true) {
    let step: ReadableStreamReadResult<Uint8Array>;
    try {
      step = await reader.read();
    } catch (error) {
      // The connection broke mid-body (ClientClosedError): what arrived may be secret.
      for (const chunk of chunks) chunk.fill(0);
      throw error;
    }
    const { done, value } = step;
    if (done) break;
    size += value.length;
    if (size > limit) {
      await reader.cancel().catch(() => {});
      for (const chunk of chunks) chunk.fill(0);
      throw new ApiError("api_payload_too_large");
    }
    chunks.push(value);
  }
  if (chunks.length === 1) return chunks[0]!;
  const out = new Uint8Array(size);
  let offset = 0;
  for (const chunk of chunks) {
    out.set(chunk, offset);
    offset += chunk.length;
    chunk.fill(0);
  }
  return out;
}

/** Parses a JSON body; an empty body counts as `{}` (SPIKE clients send `{}`). */
export function parseJsonBody(bytes: Uint8Array): unknown {
  if (bytes.length === 0) return {};
  try {
    return JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(bytes));
  } catch {
    throw badRequest("body is not valid JSON");
  }
}
