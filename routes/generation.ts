/** Running the engine for a route: queue ticket, cancellation from the client, metrics. */
import type { Context } from "hono";
import type { Ticket } from "../src/engine/scheduler.ts";
import type { ChatResult } from "../src/engine/types.ts";
import type { Services } from "./services.ts";

/** Aborts when the client disconnects (Deno aborts request.signal) or when the route aborts it. */
export function clientAbort(c: Context): AbortController {
  const abort = new AbortController();
  const signal = c.req.raw.signal;
  if (signal.aborted) abort.abort(signal.reason);
  else signal.addEventListener("abort", () => abort.abort(signal.reason), { once: true });
  return abort;
}

/**
 * Runs `job` when the ticket's turn comes and records its timings. `early` starts work the job will use
 * (the engine's startImagePreparation) while the ticket waits; what it returns drops that work at the end.
 */
export async function runGeneration<T extends ChatResult | ChatResult[]>(
  s: Services,
  ticket: Ticket,
  signal: AbortSignal,
  job: () => Promise<T>,
  early?: () => (() => void) | undefined,
): Promise<T> {
  const started = performance.now();
  const drop = early?.();
  let result: T;
  try {
    result = await ticket.run(job, signal);
  } finally {
    drop?.();
  }
  // A job that returned after an abort produced text nobody asked for; do not save or count it.
  signal.throwIfAborted();
  const totalMs = performance.now() - started;
  const results: ChatResult[] = Array.isArray(result) ? result : [result];
  for (const r of results) {
    s.metrics.observeGeneration({
      timeToFirstTokenMs: r.timeToFirstTokenMs,
      totalMs,
      outputTokens: r.outputTokenIds.length,
      promptTokens: r.promptTokenIds.length,
      tiles: r.images.reduce((n: number, image) => n + image.tiles, 0),
    });
  }
  return result;
}

export function usageOf(result: ChatResult): { prompt_tokens: number; completion_tokens: number } {
  return { prompt_tokens: result.promptTokenIds.length, completion_tokens: result.outputTokenIds.length };
}
