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

/**
 * Joins the outputs of a step's row groups, each written at the start of a row of `src` (so that each starts
 * on an offset a binding can take, 256 bytes, where the rows of `out` do not): out row g·m + j = src[g,
 * j·W … (j+1)·W), m = rowsPerGroup. src: [G, S] f32 with S ≥ m·W, out: [n, W] f32 with n ≤ G·m.
 */
export function joinRowGroups(r: Recorder, src: Tensor, rowsPerGroup: number, out: Tensor): void {
  const [G, S] = src.shape;
  const [n, W] = out.shape;
  expectTensor("joinRowGroups src", src, "f32", [G, S]);
  expectTensor("joinRowGroups out", out, "f32", [n, W]);
  const d = rowsPerGroup * W;
  if (!(Number.isInteger(rowsPerGroup) && rowsPerGroup >= 1 && d <= S && n <= G * rowsPerGroup)) {
    throw new Error(
      `joinRowGroups: ${n} rows of ${W} in groups of ${rowsPerGroup} do not fit ${src.describe()}`,
    );
  }
  record(r, src, null, 0, out, { d, total: n * W });
}

function record(
  r: Recorder,
  src: Tensor,
  rows: Tensor | null,
  firstRow: number,
  out: Tensor,
  // joinRowGroups: a row of src is a group of out's rows (d elements, the first of src's S).
  groups?: { d: number; total: number },
): void {
  if (out.buffer === src.buffer) {
    throw new Error(`gatherRows/copyRows: out must not alias src (${src.label})`);
  }
  const [R, S] = src.shape;
  const d = groups?.d ?? S;
  const total = groups?.total ?? out.shape[0] * S;
  const { workgroups, groupsPerRow } = flatGrid(total);
  r.dispatch("gather_rows", {
    bindings: [src, rows ?? src, out],
    params: [total, d, R, firstRow, rows ? 1 : 0, f32(NaN), groupsPerRow, S],
    workgroups,
    label: `gather_rows ${out.label}`,
  });
}
