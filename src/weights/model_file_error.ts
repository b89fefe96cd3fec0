/**
 * A model directory that cannot be used as it is: bad `config.json`, missing or truncated safetensors,
 * a tensor with the wrong shape or dtype. These are operator mistakes at load time, not client mistakes
 * in a request, so they are kept apart from `InputError` (which routes turn into HTTP 400s).
 * Messages name the file, the tensor or field, and the bad value.
 */
export class ModelFileError extends Error {
  constructor(message: string, readonly path: string) {
    super(message);
    this.name = "ModelFileError";
  }
}
