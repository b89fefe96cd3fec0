/**
 * Server-sent events for generation. The HTTP status is decided only once the first token exists:
 * a mistake the engine finds up front (a corrupt image, a prompt too long) is still a normal 4xx
 * response; a failure after that can only travel inside the stream, as an error event.
 */
import { asInputError, type ErrorBody, errorBody } from "./errors.ts";

export interface StreamFrames<T> {
  /** SSE frames (each ending in a blank line) for one piece of text. */
  delta(text: string): string;
  /** Frames after the last piece; may do work that fails (saving the turn), which becomes an error frame. */
  done(result: T): Promise<string> | string;
  error(body: ErrorBody): string;
}

export function sseFrame(data: unknown, event?: string): string {
  return `${event ? `event: ${event}\n` : ""}data: ${
    typeof data === "string" ? data : JSON.stringify(data)
  }\n\n`;
}

/**
 * Starts `run` (which calls onText per piece) and answers with an SSE response once text flows.
 * Rejects like `run` when it fails before any text. Cancelling the response body aborts `abort`.
 */
export async function streamGeneration<T>(
  run: (onText: (text: string) => void) => Promise<T>,
  frames: StreamFrames<T>,
  abort: AbortController,
): Promise<Response> {
  const pending: string[] = [];
  let wake: (() => void) | null = null;
  let outcome: { ok: true; value: T } | { ok: false; error: unknown } | null = null;
  const onText = (text: string) => {
    pending.push(text);
    wake?.();
  };
  const job = run(onText).then(
    (value) => (outcome = { ok: true, value }),
    (error) => (outcome = { ok: false, error }),
  ).finally(() => wake?.());
  // Wait for the first text or the end, whichever comes first.
  while (pending.length === 0 && outcome === null) await new Promise<void>((resolve) => (wake = resolve));
  wake = null;
  const early = outcome as { ok: boolean; error?: unknown } | null;
  if (pending.length === 0 && early && !early.ok) throw early.error;

  const encoder = new TextEncoder();
  let cancelled = false;
  const body = new ReadableStream<Uint8Array>({
    start(controller) {
      const send = (text: string) => {
        if (!cancelled) controller.enqueue(encoder.encode(text));
      };
      (async () => {
        for (;;) {
          while (pending.length) send(frames.delta(pending.shift()!));
          if (outcome !== null) break;
          await new Promise<void>((resolve) => (wake = resolve));
          wake = null;
        }
        await job;
        const end = outcome as unknown as { ok: true; value: T } | { ok: false; error: unknown };
        try {
          if (!end.ok) throw end.error;
          send(await frames.done(end.value));
        } catch (err) {
          send(frames.error(errorBody(asInputError(err))));
        }
        if (!cancelled) controller.close();
      })();
    },
    cancel() {
      cancelled = true;
      abort.abort(new DOMException("The client closed the stream", "AbortError"));
    },
  });
  return new Response(body, {
    headers: { "content-type": "text/event-stream; charset=utf-8", "cache-control": "no-cache" },
  });
}
