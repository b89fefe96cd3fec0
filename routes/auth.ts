/** Optional API key (INTERNVL_API_KEY): `Authorization: Bearer <key>` on every route but /health. */
import type { MiddlewareHandler } from "hono";
import { InputError } from "../src/errors.ts";

export function apiKeyAuth(apiKey: string | null, open: string[] = ["/health"]): MiddlewareHandler {
  const expected = new TextEncoder().encode(apiKey ?? "");
  return async (c, next) => {
    if (apiKey === null || open.includes(c.req.path)) return await next();
    const header = c.req.header("authorization") ?? "";
    const match = /^Bearer\s+(.+)$/i.exec(header.trim());
    if (!match) {
      throw new InputError("Missing API key; send the header 'Authorization: Bearer <INTERNVL_API_KEY>'", {
        status: 401,
        code: "missing_api_key",
      });
    }
    if (!constantTimeEqual(new TextEncoder().encode(match[1]), expected)) {
      throw new InputError(
        "Incorrect API key; check the key the server was started with (INTERNVL_API_KEY)",
        {
          status: 401,
          code: "invalid_api_key",
        },
      );
    }
    await next();
  };
}

/** Compares without an early exit, so response time does not reveal how much of a guess was right. */
function constantTimeEqual(a: Uint8Array, b: Uint8Array): boolean {
  let diff = a.length ^ b.length;
  for (let i = 0; i < Math.max(a.length, b.length); i++) diff |= (a[i] ?? 0) ^ (b[i] ?? 0);
  return diff === 0;
}
