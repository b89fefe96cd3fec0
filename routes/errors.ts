/**
 * The one error shape, `{"error":{"message","type","param","code"}}` (OpenAI's), for every failure.
 * Client mistakes arrive as InputError (ours or the engine's) or as zod issues turned into one here.
 */
import type { Context } from "hono";
import { HTTPException } from "hono/http-exception";
import type { z } from "zod";
import { InputError } from "../src/errors.ts";

export interface ErrorBody {
  error: { message: string; type: string; param: string | null; code: string | null };
}

/** OpenAI's `type` for a status: clients switch on it (the openai package maps status to classes). */
export function errorType(status: number): string {
  if (status === 401) return "authentication_error";
  if (status === 403) return "permission_error";
  if (status === 404) return "not_found_error";
  if (status === 409) return "conflict_error";
  if (status === 503 || status === 429) return "overloaded_error";
  if (status >= 500) return "server_error";
  return "invalid_request_error";
}

export function errorBody(err: InputError): ErrorBody {
  return { error: { message: err.message, type: errorType(err.status), param: err.param, code: err.code } };
}

/** Any thrown value as an InputError; unexpected ones become a 500 that hides nothing useful to fix. */
export function asInputError(err: unknown): InputError {
  if (err instanceof InputError) return err;
  if (err instanceof HTTPException) {
    return new InputError(err.message || `HTTP ${err.status}`, { status: err.status });
  }
  if (isAbortError(err)) {
    // Nobody reads this answer: the client has gone. 499 keeps it apart from errors in the metrics.
    return new InputError("The client closed the request", { status: 499, code: "client_closed_request" });
  }
  const detail = err instanceof Error ? err.message : String(err);
  return new InputError(`Internal server error: ${detail}`, { status: 500, code: "internal_error" });
}

export function isAbortError(err: unknown): boolean {
  return err instanceof DOMException && (err.name === "AbortError" || err.name === "TimeoutError");
}

/** Hono onError: logs server faults, answers with the one shape, adds Retry-After to 503s. */
export function handleError(err: unknown, c: Context): Response {
  const input = asInputError(err);
  // InputErrors are expected answers (even the 503s); only unexpected failures deserve a stack trace.
  if (input.status >= 500 && !(err instanceof InputError)) {
    console.error(`${c.req.method} ${c.req.path} failed:`, err);
  }
  // For the metrics middleware, which counts errors by code.
  const headers: Record<string, string> = { "x-error-code": input.code ?? `http_${input.status}` };
  const retryAfter = (err as { retryAfterSeconds?: number }).retryAfterSeconds;
  if (input.status === 503) headers["Retry-After"] = String(retryAfter ?? 1);
  if (input.status === 401) headers["WWW-Authenticate"] = 'Bearer realm="internvl"';
  return c.json(errorBody(input), input.status as 400, headers);
}

/** `images[1]`, `messages[0].content[2].image_url.url`: the path as a client would write it. */
export function paramName(path: readonly PropertyKey[]): string | null {
  let out = "";
  for (const part of path) {
    out += typeof part === "number" ? `[${part}]` : out === "" ? String(part) : `.${String(part)}`;
  }
  return out === "" ? null : out;
}

function quote(value: unknown): string {
  if (value === undefined) return "nothing";
  if (typeof value === "number" && !Number.isFinite(value)) return String(value); // JSON has no Infinity
  let text: string;
  try {
    text = typeof value === "string" ? JSON.stringify(value) : JSON.stringify(value) ?? String(value);
  } catch {
    text = String(value);
  }
  return text.length > 60 ? `${text.slice(0, 57)}...` : text;
}

function typeName(value: unknown): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return "an array";
  if (value instanceof Uint8Array) return "a file";
  return typeof value === "object" ? "an object" : `a ${typeof value}`;
}

/** The first zod issue as a sentence naming the field, what it needs and what it got. */
export function zodToInputError(error: z.ZodError): InputError {
  const issue = deepestIssue(error.issues[0]);
  let path = [...issue.path];
  let detail: string;
  const input = (issue as { input?: unknown }).input;
  switch (issue.code) {
    case "unrecognized_keys": {
      const keys = issue.keys;
      path = [...path, keys[0]];
      const where = paramName(issue.path);
      return new InputError(
        `Unknown field ${keys.map((k) => `'${k}'`).join(", ")}${where ? ` in '${where}'` : ""}; ` +
          `check the spelling against the API documentation`,
        { param: paramName(path) ?? undefined, code: "unknown_field" },
      );
    }
    case "invalid_type":
      if (input === undefined) {
        detail = `is required (${issue.expected})`;
      } else if (typeof input === "number" && !Number.isFinite(input)) {
        // JSON.parse reads 1e400 as Infinity, which the number schemas refuse as not a number.
        detail = `must be a finite number; got ${quote(input)}`;
      } else {
        const expected = issue.expected === "int"
          ? "an integer"
          : `${/^[aeiou]/.test(issue.expected) ? "an" : "a"} ${issue.expected}`;
        detail = `must be ${expected}; got ${typeName(input)}` +
          (typeof input === "number" || typeof input === "string" ? ` ${quote(input)}` : "");
      }
      break;
    case "too_small":
    case "too_big": {
      const bound = issue.code === "too_small" ? issue.minimum : issue.maximum;
      const word = issue.code === "too_small"
        ? (issue.inclusive ? "at least" : "more than")
        : (issue.inclusive ? "at most" : "less than");
      const unit = issue.origin === "string" ? " characters" : issue.origin === "array" ? " items" : "";
      const got = issue.origin === "string" || issue.origin === "array"
        ? `${(input as { length: number })?.length ?? 0}${unit}`
        : quote(input);
      detail = issue.message.startsWith("Too ")
        ? `must be ${word} ${String(bound)}${unit}; got ${got}`
        : issue.message;
      break;
    }
    case "invalid_value":
      detail = `must be one of ${issue.values.map((v) => quote(v)).join(", ")}; got ${quote(input)}`;
      break;
    case "invalid_union":
      detail = issue.message.startsWith("Invalid discriminator")
        ? `${issue.message.replace("Invalid discriminator value. ", "has an unknown type; ")}`
        : `has the wrong shape; got ${typeName(input)} ${quote(input)}`;
      break;
    default:
      detail = issue.message;
  }
  const param = paramName(path);
  const message = param ? `Field '${param}' ${detail}` : `Request body ${detail}`;
  return new InputError(message, {
    param: param ?? undefined,
    code: issue.code === "invalid_type" ? "invalid_type" : "invalid_value",
  });
}

/**
 * For a union (e.g. message content: string | parts[]), the issue of the branch that got furthest into
 * the value, with its full path: "messages[0].content[0].type has an unknown type" beats "wrong shape".
 */
function deepestIssue(issue: z.core.$ZodIssue): z.core.$ZodIssue {
  if (issue.code !== "invalid_union" || issue.errors.length === 0) return issue;
  let best: z.core.$ZodIssue | null = null;
  for (const branch of issue.errors) {
    const first = branch[0];
    if (!first || (first.path.length === 0 && first.code === "invalid_type")) continue;
    if (!best || first.path.length > best.path.length) best = first;
  }
  return best ? deepestIssue({ ...best, path: [...issue.path, ...best.path] } as z.core.$ZodIssue) : issue;
}

/** Parses `data` with `schema` or throws the first issue as a 400 InputError. */
export function parseOrThrow<S extends z.ZodType>(schema: S, data: unknown): z.output<S> {
  const result = schema.safeParse(data, { reportInput: true });
  if (!result.success) throw zodToInputError(result.error);
  return result.data;
}
