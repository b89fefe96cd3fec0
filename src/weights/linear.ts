/**
 * One nn.Linear from the checkpoint, int8 or float, decided per tensor (never from a module list).
 * bitsandbytes LLM.int8 (`Linear8bitLt._save_to_state_dict`, bnb 0.41–0.43) stores per module P:
 *   P.weight         I8  [out, in] row-major (`CB`)
 *   P.SCB            F32 [out]     per-row absmax of the fp16 weight
 *   P.weight_format  U8  []        0 = "row" (only written by bnb ≥ 0.43.1; absent ⇒ row)
 *   P.bias           BF16 [out]    when the Linear has a bias
 * and dequantizes as W[o, i] = CB[o, i] · SCB[o] / 127.
 */
import type { Checkpoint } from "./checkpoint.ts";
import { isFloatDtype } from "./dtype.ts";
import { ModelFileError } from "./model_file_error.ts";

export interface LinearShape {
  outFeatures: number;
  inFeatures: number;
  /** true: `prefix.bias` must exist; false: it must not; absent: read it if present. */
  bias?: boolean;
}

export interface Int8LinearWeights {
  kind: "int8";
  /** weight: [outFeatures, inFeatures] i8, row-major */
  weight: Int8Array;
  /** scb: [outFeatures] f32, per-row absmax; W = weight · scb[row] / 127 */
  scb: Float32Array;
  /** bias: [outFeatures] f32 */
  bias: Float32Array | null;
  outFeatures: number;
  inFeatures: number;
}

export interface FloatLinearWeights {
  kind: "float";
  /** weight: [outFeatures, inFeatures] f32, row-major, widened from `dtype` */
  weight: Float32Array;
  /** bias: [outFeatures] f32 */
  bias: Float32Array | null;
  /** The stored dtype (BF16 for mlp1.3 in V1.5-Int8), for uploads that want to keep 16-bit storage. */
  dtype: "BF16" | "F16" | "F32";
  outFeatures: number;
  inFeatures: number;
}

export type LinearWeights = Int8LinearWeights | FloatLinearWeights;

// bitsandbytes' FORMAT_TO_INT (commit 7449d713): the tiled formats are GPU-kernel layouts we cannot read.
const WEIGHT_FORMATS = ["row", "col32", "col_turing", "col_ampere"];

export async function readLinear(
  checkpoint: Checkpoint,
  prefix: string,
  shape: LinearShape,
): Promise<LinearWeights> {
  const { outFeatures, inFeatures } = shape;
  const weightName = `${prefix}.weight`;
  const scbName = `${prefix}.SCB`;
  const info = checkpoint.info(weightName);
  checkpoint.checkShape(weightName, [outFeatures, inFeatures]);
  const bias = await readBias(checkpoint, prefix, shape);

  if (info.dtype === "I8") {
    if (!checkpoint.has(scbName)) {
      throw new ModelFileError(
        `Tensor "${weightName}" is I8 but "${scbName}" is missing in ${checkpoint.dir}; ` +
          "an int8 weight needs its bitsandbytes row scales",
        info.file,
      );
    }
    const scbInfo = checkpoint.info(scbName);
    if (scbInfo.dtype !== "F32") {
      throw new ModelFileError(
        `Tensor "${scbName}" in ${scbInfo.file} is ${scbInfo.dtype}; expected F32`,
        scbInfo.file,
      );
    }
    checkpoint.checkShape(scbName, [outFeatures]);
    await checkWeightFormat(checkpoint, prefix);
    const bytes = await checkpoint.readBytes(weightName);
    const weight = new Int8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    const scb = await checkpoint.readFloat32(scbName);
    return { kind: "int8", weight, scb, bias, outFeatures, inFeatures };
  }
  if (isFloatDtype(info.dtype)) {
    // An SCB next to a float weight (bnb has_fp16_weights) leaves the weight usable as is.
    const weight = await checkpoint.readFloat32(weightName);
    return { kind: "float", weight, bias, dtype: info.dtype, outFeatures, inFeatures };
  }
  throw new ModelFileError(
    `Tensor "${weightName}" in ${info.file} is ${info.dtype}; a Linear weight must be I8 (with SCB) or BF16/F16/F32`,
    info.file,
  );
}

async function readBias(
  checkpoint: Checkpoint,
  prefix: string,
  shape: LinearShape,
): Promise<Float32Array | null> {
  const name = `${prefix}.bias`;
  const present = checkpoint.has(name);
  if (shape.bias === true && !present) {
    throw new ModelFileError(
      `Tensor "${name}" is not in the checkpoint at ${checkpoint.dir}`,
      checkpoint.dir,
    );
  }
  if (shape.bias === false && present) {
    throw new ModelFileError(
      `Tensor "${name}" is in the checkpoint at ${checkpoint.dir}, but the config says this Linear has no bias`,
      checkpoint.dir,
    );
  }
  return present ? await checkpoint.readFloat32(name, [shape.outFeatures]) : null;
}

/** Absent (bnb ≤ 0.43.0 saved the string "row", which transformers drops) or 0 = row-major. */
async function checkWeightFormat(checkpoint: Checkpoint, prefix: string): Promise<void> {
  const name = `${prefix}.weight_format`;
  if (!checkpoint.has(name)) return;
  const info = checkpoint.info(name);
  if (info.dtype !== "U8" || info.byteLength !== 1) {
    throw new ModelFileError(
      `Tensor "${name}" in ${info.file} is ${info.dtype} [${info.shape.join(", ")}]; expected a U8 scalar`,
      info.file,
    );
  }
  const value = (await checkpoint.readBytes(name))[0];
  if (value !== 0) {
    const label = WEIGHT_FORMATS[value] ?? "unknown";
    throw new ModelFileError(
      `Tensor "${name}" in ${info.file} is ${value} (${label}); only bitsandbytes weight_format 0 ("row") ` +
        "is supported, re-save the checkpoint with row-major int8 weights",
      info.file,
    );
  }
}

/**
 * W[o, i] = f32(CB[o, i]) · SCB[o] / 127 with f32 rounding after each step, as torch does
 * (`CB.float() * SCB.view(-1, 1) / 127`); for tests and CPU references, not the GPU path.
 * weight: [outFeatures, inFeatures] i8, scb: [outFeatures] f32 → [outFeatures, inFeatures] f32
 */
export function dequantizeInt8(
  weight: Int8Array,
  scb: Float32Array,
  outFeatures: number,
  inFeatures: number,
): Float32Array {
  if (weight.length !== outFeatures * inFeatures || scb.length !== outFeatures) {
    throw new RangeError(
      `dequantizeInt8: weight has ${weight.length} values and scb ${scb.length}, expected ` +
        `${outFeatures}×${inFeatures} and ${outFeatures}`,
    );
  }
  const out = new Float32Array(weight.length);
  for (let o = 0; o < outFeatures; o++) {
    const s = scb[o];
    const row = o * inFeatures;
    // int8 × f32 is exact in f64, so fround gives torch's f32 product; the f64 division of two f32s
    // rounded once to f32 equals f32 division. The Float32Array store does that last rounding.
    for (let i = 0; i < inFeatures; i++) out[row + i] = Math.fround(weight[row + i] * s) / 127;
  }
  return out;
}
