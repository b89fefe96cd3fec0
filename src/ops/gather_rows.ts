import type { Recorder } from "../gpu/recorder.ts";
import { f32 } from "../gpu/recorder.ts";
import { expectTensor, type Tensor } from "../gpu/tensor.ts";
import { flatGrid } from "./grid.ts";

/** out = src[firstRow .. firstRow + n) (e.g. the last prompt row before the LM head). src: [R, D], out: [n, D] f32. */
export function copyRows(r: Recorder, src: Tensor, firstRow: number, out: Tensor): void {
  const [R, D] = src.shape;
  const [n] = out.shape;
  expectTensor("copyRows src", src, "f32", [R, D]);
  expectTensor("copyRows out", out, "f32", [n, D]);
  if (!Number.isInteger(firstRow) || firstRow < 0 || firstRow + n > R) {
    throw new Error(`copyRows: rows ${firstRow}..${firstRow + n - 1} are outside ${src.describe()}`);
  }
  record(r, src, null, firstRow, out);
}

/** out[i] = src[rows[i]]; rows outside [0, R) give NaN rows. src: [R, D] f32, rows: [n] i32, out: [n, D] f32. */
export function gatherRows(r: Recorder, src: Tensor, rows: Tensor, out: Tensor): void {
  const [R, D] = src.shape;
  const [n] = rows.shape;
  expectTensor("gatherRows src", src, "f32", [R, D]);
  expectTensor("gatherRows rows", rows, "i32", [n]);
  expectTensor("gatherRows out", out, "f32", [n, D]);
  record(r, src, rows, 0, out);
}

function record(r: Recorder, src: Tensor, rows: Tensor | null, firstRow: number, out: Tensor): void {
  if (out.buffer === src.buffer) {
    throw new Error(`gatherRows/copyRows: out must not alias src (${src.label})`);
  }
  const [R, D] = src.shape;
  const total = out.shape[0] * D;
  const { workgroups, groupsPerRow } = flatGrid(total);
  r.dispatch("gather_rows", {
    bindings: [src, rows ?? src, out],
    params: [total, D, R, firstRow, rows ? 1 : 0, f32(NaN), groupsPerRow],
    workgroups,
    label: `gather_rows ${out.label}`,
  });
}
