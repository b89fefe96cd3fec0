/**
 * The one error class for mistakes a caller can fix (bad input, unknown session, limits).
 * Routes turn it into `{"error":{"message","type","param","code"}}` with `status`; anything else is a 500.
 * Messages are sentence case, quote the bad value and say what to do.
 */
export class InputError extends Error {
  constructor(
    message: string,
    readonly options: {
      /** HTTP status: 400 by default; 404 unknown thing, 409 conflict, 413 too large, 429/503 busy. */
      status?: number;
      /** The request field at fault, e.g. `images[1]` or `max_num`. */
      param?: string;
      /** Machine-readable code, e.g. `image_too_large`. */
      code?: string;
    } = {},
  ) {
    super(message);
    this.name = "InputError";
  }
  get status(): number {
    return this.options.status ?? 400;
  }
  get param(): string | null {
    return this.options.param ?? null;
  }
  get code(): string | null {
    return this.options.code ?? null;
  }
}
