/**
 * Images as clients send them (data URLs, bare base64, multipart files) → file bytes for the engine.
 * Sizes are checked before decoding: base64 length gives the byte count, the header gives the pixel count.
 */
import { InputError } from "../src/errors.ts";
import { readImageHeader } from "../src/image/image_header.ts";

export interface ImageLimits {
  maxImageBytes: number;
  maxImagePixels: number;
}

/** A data URL, bare base64, or bytes from a multipart file. */
export type ImageSource = string | Uint8Array;

const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;
const BASE64URL = /^[A-Za-z0-9_-]*={0,2}$/;

export function decodeImage(source: ImageSource, param: string, limits: ImageLimits): Uint8Array {
  const bytes = typeof source === "string" ? decodeImageString(source, param, limits) : source;
  checkBytes(bytes.length, param, limits);
  if (bytes.length === 0) throw new InputError(`Image '${param}' is empty`, { param, code: "invalid_image" });
  const size = declaredSize(bytes);
  if (size && size.width * size.height > limits.maxImagePixels) {
    throw new InputError(
      `Image '${param}' is ${size.width}×${size.height} pixels; the limit is ${limits.maxImagePixels} pixels ` +
        `(MAX_IMAGE_PIXELS); scale it down`,
      { status: 413, param, code: "image_too_large" },
    );
  }
  return bytes;
}

/**
 * Width × height from a PNG, JPEG or TIFF header without decoding pixels, so an image over MAX_IMAGE_PIXELS
 * is refused before it costs memory or a place at the engine. Unreadable data gives null and is left to
 * the engine, which owns decoding and names the exact problem.
 */
function declaredSize(bytes: Uint8Array): { width: number; height: number } | null {
  try {
    return readImageHeader(bytes);
  } catch {
    return null;
  }
}

function checkBytes(n: number, param: string, limits: ImageLimits): void {
  if (n > limits.maxImageBytes) {
    throw new InputError(
      `Image '${param}' is ${n} bytes; the limit is ${limits.maxImageBytes} bytes (MAX_IMAGE_BYTES)`,
      { status: 413, param, code: "image_too_large" },
    );
  }
}

function decodeImageString(text: string, param: string, limits: ImageLimits): Uint8Array {
  let payload = text;
  if (text.startsWith("data:")) {
    const comma = text.indexOf(",");
    const header = comma < 0 ? text : text.slice(5, comma);
    const [mime, ...flags] = header.split(";");
    if (comma < 0 || !flags.includes("base64")) {
      throw new InputError(
        `Image '${param}' is a data URL without ';base64,'; send data:image/png;base64,<data>`,
        { param, code: "invalid_image_url" },
      );
    }
    if (mime !== "" && !mime.startsWith("image/") && mime !== "application/octet-stream") {
      throw new InputError(`Image '${param}' has media type "${mime}"; send an image/* data URL`, {
        param,
        code: "invalid_image_url",
      });
    }
    payload = text.slice(comma + 1);
  } else if (/^[a-z][a-z0-9+.-]*:\/\//i.test(text)) {
    throw new InputError(
      `Image '${param}' is a URL (${
        text.slice(0, 40)
      }); this server does not fetch URLs, send the image as a ` +
        `data URL or base64`,
      { param, code: "invalid_image_url" },
    );
  }
  // Line breaks are common in pasted base64 (MIME wraps at 76 columns).
  payload = payload.replace(/\s+/g, "");
  const padding = payload.endsWith("==") ? 2 : payload.endsWith("=") ? 1 : 0;
  checkBytes(Math.floor((payload.length * 3) / 4) - padding, param, limits);
  const url = !BASE64.test(payload) && BASE64URL.test(payload);
  if ((!BASE64.test(payload) && !url) || payload.length % 4 === 1) {
    throw new InputError(`Image '${param}' is not valid base64; send a data URL or standard base64`, {
      param,
      code: "invalid_base64",
    });
  }
  if (url) payload = payload.replaceAll("-", "+").replaceAll("_", "/");
  let binary: string;
  try {
    binary = atob(payload + "=".repeat((4 - (payload.length % 4)) % 4));
  } catch {
    throw new InputError(`Image '${param}' is not valid base64; send a data URL or standard base64`, {
      param,
      code: "invalid_base64",
    });
  }
  const bytes = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
  return bytes;
}
