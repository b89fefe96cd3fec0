/**
 * A thrown value as a record that crosses a thread (a structured-clone message) and is rebuilt there with its
 * class: InputError keeps its status, code and param (so a client's mistake stays a 4xx), DOMException its
 * name (AbortError), any other Error its name, message and stack. Used by the engine's thread
 * (src/engine/engine_protocol.ts) and the image workers (src/image/image_workers.ts).
 */
import { InputError } from "./errors.ts";

/** A thrown value as a record; `kind` says which class `fromWire` rebuilds. */
export interface WireError {
  kind: "InputError" | "DOMException" | "Error";
  name: string;
  message: string;
  options?: InputError["options"];
  /** Read by the HTTP error handler for Retry-After. */
  retryAfterSeconds?: number;
  stack?: string;
}

export function toWire(err: unknown): WireError {
  const retryAfterSeconds = (err as { retryAfterSeconds?: number } | null)?.retryAfterSeconds;
  const extra = typeof retryAfterSeconds === "number" ? { retryAfterSeconds } : {};
  if (err instanceof InputError) {
    return {
      kind: "InputError",
      name: err.name,
      message: err.message,
      options: { ...err.options },
      ...extra,
    };
  }
  if (err instanceof DOMException) return { kind: "DOMException", name: err.name, message: err.message };
  if (err instanceof Error) return { kind: "Error", name: err.name, message: err.message, stack: err.stack };
  return { kind: "Error", name: "Error", message: String(err) };
}

export function fromWire(w: WireError): Error {
  let err: Error;
  if (w.kind === "InputError") err = new InputError(w.message, w.options);
  else if (w.kind === "DOMException") err = new DOMException(w.message, w.name);
  else {
    err = new Error(w.message);
    err.name = w.name;
    // The other thread's stack says where it failed; this one's would only say "a message arrived".
    if (w.stack) err.stack = w.stack;
  }
  if (w.retryAfterSeconds !== undefined) Object.assign(err, { retryAfterSeconds: w.retryAfterSeconds });
  return err;
}
