import type { Recorder } from "../gpu/recorder.ts";
import { f32 } from "../gpu/recorder.ts";
import { expectTensor, type Tensor } from "../gpu/tensor.ts";
import { flatGrid } from "./grid.ts";

/**
 * tok_embeddings(ids) with image features at the <IMG_CONTEXT> positions.
 * table: [V, D] bf16x2; ids: [T] i32; imageRow: [T] i32, −1 for text, else the row of imageEmbeds;
 * imageEmbeds: [M, D] f32 or null; out: [T, D] f32. Out-of-range ids / rows produce NaN rows.
 */
export function embedTokens(
  r: Recorder,
  table: Tensor,
  ids: Tensor,
  imageRow: Tensor,
  imageEmbeds: Tensor | null,
  out: Tensor,
): void {
  const [V, D] = table.shape;
  const [T] = ids.shape;
  expectTensor("embedTokens table", table, "bf16x2", [V, D]);
  expectTensor("embedTokens ids", ids, "i32", [T]);
  expectTensor("embedTokens imageRow", imageRow, "i32", [T]);
  if (imageEmbeds) expectTensor("embedTokens imageEmbeds", imageEmbeds, "f32", [-1, D]);
  expectTensor("embedTokens out", out, "f32", [T, D]);
  const M = imageEmbeds ? imageEmbeds.shape[0] : 0;
  const { workgroups, groupsPerRow } = flatGrid(T * D);
  r.dispatch("embed_tokens", {
    bindings: [table, ids, imageRow, imageEmbeds ?? table, out],
    params: [T * D, D, Math.ceil(D / 2), V, M, f32(NaN), groupsPerRow],
    workgroups,
    label: `embed_tokens ${out.label}`,
  });
}

/**
 * Raw little-endian bf16 bytes → bf16x2 words (element 2j in the low half). With `rowElements` odd,
 * each row is padded to whole words (the bf16x2 layout); otherwise the bytes are already that layout.
 * bytes: [rows·rowElements·2] → [rows·ceil(rowElements/2)] u32
 */
export function packBf16(bytes: Uint8Array, rowElements?: number): Uint32Array {
  if (bytes.byteLength % 2 !== 0) {
    throw new Error(`packBf16: ${bytes.byteLength} bytes is not whole bf16 values`);
  }
  const cols = rowElements ?? bytes.byteLength / 2;
  const rowBytes = cols * 2;
  if (cols === 0 || bytes.byteLength % rowBytes !== 0) {
    throw new Error(`packBf16: ${bytes.byteLength} bytes are not whole rows of ${cols} bf16 values`);
  }
  const rows = bytes.byteLength / rowBytes;
  const stride = Math.ceil(cols / 2) * 4;
  const out = new Uint8Array(rows * stride);
  if (stride === rowBytes) out.set(bytes);
  else for (let r = 0; r < rows; r++) out.set(bytes.subarray(r * rowBytes, (r + 1) * rowBytes), r * stride);
  return new Uint32Array(out.buffer);
}
