/**
 * Request bodies → plain objects for the zod schemas: JSON, or multipart/form-data where files become
 * bytes and text fields are converted to the JSON type their schema expects.
 */
import type { Context } from "hono";
import { InputError } from "../src/errors.ts";

export async function readJson(c: Context): Promise<unknown> {
  const type = mediaType(c);
  if (type !== "application/json") throw unsupportedType(type, "application/json");
  return parseJsonText(await c.req.text());
}

/** JSON, or multipart/form-data with fields of the given kinds (others are passed on as strings). */
export async function readJsonOrForm(
  c: Context,
  fields: { numbers: string[]; booleans: string[]; lists: string[] },
): Promise<unknown> {
  const type = mediaType(c);
  if (type === "application/json") return parseJsonText(await c.req.text());
  if (type !== "multipart/form-data") throw unsupportedType(type, "application/json or multipart/form-data");
  let form: FormData;
  try {
    form = await c.req.raw.formData();
  } catch (err) {
    throw new InputError(`Multipart body could not be parsed: ${(err as Error).message}`, {
      code: "invalid_body",
    });
  }
  const out: Record<string, unknown> = {};
  for (const key of new Set(form.keys())) {
    const name = key.endsWith("[]") ? key.slice(0, -2) : key;
    const values = await Promise.all(
      form.getAll(key).map(async (v) => typeof v === "string" ? v : new Uint8Array(await v.arrayBuffer())),
    );
    if (fields.lists.includes(name)) {
      out[name] = [...(out[name] as unknown[] ?? []), ...values];
      continue;
    }
    const value = values.at(-1)!;
    if (
      typeof value === "string" && fields.numbers.includes(name) && value.trim() !== "" &&
      !isNaN(Number(value))
    ) {
      out[name] = Number(value);
    } else if (
      typeof value === "string" && fields.booleans.includes(name) && /^(true|false|1|0|on)$/i.test(value)
    ) {
      out[name] = /^(true|1|on)$/i.test(value);
    } else {
      out[name] = value;
    }
  }
  return out;
}

function mediaType(c: Context): string {
  return (c.req.header("content-type") ?? "").split(";")[0].trim().toLowerCase();
}

function unsupportedType(type: string, wanted: string): InputError {
  const what = type ? `Content-Type "${type}" is not supported` : "Content-Type header is missing";
  return new InputError(
    `${what}; send ${wanted}`,
    { status: 415, code: "unsupported_media_type" },
  );
}

export function parseJsonText(text: string): unknown {
  if (text.trim() === "") {
    throw new InputError("Request body is empty; send a JSON object", { code: "invalid_json" });
  }
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new InputError(`Request body is not valid JSON: ${(err as Error).message}`, {
      code: "invalid_json",
    });
  }
}
