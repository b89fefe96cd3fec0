// Shared access to tests/fixtures/tiny-internvl: the manifest, golden binaries and the loaded tiny model.
import { Gpu } from "../../src/gpu/device.ts";
import { checkpointSource, InternVLModel } from "../../src/model/internvl.ts";
import { openCheckpoint } from "../../src/weights/checkpoint.ts";
import { loadModelConfig } from "../../src/weights/config.ts";

export const fixtureRoot = new URL("../fixtures/tiny-internvl/", import.meta.url).pathname;
export const modelDir = fixtureRoot + "model";

// deno-lint-ignore no-explicit-any
export type Json = any;
export const manifest: Json = JSON.parse(Deno.readTextFileSync(fixtureRoot + "goldens/manifest.json"));

export function goldenF32(file: string): Float32Array {
  const b = Deno.readFileSync(fixtureRoot + "goldens/" + file);
  return new Float32Array(b.buffer, b.byteOffset, b.byteLength / 4);
}

export function goldenI32(file: string): Int32Array {
  const b = Deno.readFileSync(fixtureRoot + "goldens/" + file);
  return new Int32Array(b.buffer, b.byteOffset, b.byteLength / 4);
}

export function caseById(id: string): Json {
  return manifest.cases.find((c: Json) => c.id === id);
}

/**
 * The fixture's image file. JPEGs decode a few LSB differently from libjpeg-turbo (what Pillow used),
 * so tests of the model take Pillow's decoded pixels (`<key>.decoded.png`) unless `asStored` is set.
 */
export function imageFile(key: string, asStored = false): Uint8Array {
  const decoded = `goldens/images/${key}.decoded.png`;
  const useDecoded = !asStored && manifest.images[key].format === "JPEG";
  return Deno.readFileSync(fixtureRoot + (useDecoded ? decoded : "goldens/" + manifest.images[key].file));
}

let loaded: Promise<InternVLModel> | null = null;

/** The tiny model on this host's WebGPU adapter, loaded once per test process. */
export function tinyModel(): Promise<InternVLModel> {
  loaded ??= (async () => {
    const gpu = await Gpu.create();
    // Tearing down a live device at process exit sometimes crashes Mesa's llvmpipe; destroy it first.
    globalThis.addEventListener("unload", () => gpu.destroy());
    const config = await loadModelConfig(modelDir);
    const ckpt = await openCheckpoint(modelDir);
    try {
      return await InternVLModel.load(gpu, config, checkpointSource(ckpt));
    } finally {
      await ckpt.close();
    }
  })();
  return loaded;
}

/** max |a−b| and ‖a−b‖/‖b‖. */
export function compare(actual: ArrayLike<number>, expected: ArrayLike<number>) {
  if (actual.length !== expected.length) throw new Error(`length ${actual.length} ≠ ${expected.length}`);
  let maxAbs = 0, num = 0, den = 0;
  for (let i = 0; i < expected.length; i++) {
    const d = actual[i] - expected[i];
    maxAbs = Math.max(maxAbs, Math.abs(d));
    num += d * d;
    den += expected[i] * expected[i];
  }
  return { maxAbs: Number.isNaN(num) ? Infinity : maxAbs, rel: Math.sqrt(num / Math.max(den, 1e-30)) };
}
