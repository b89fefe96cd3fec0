// Per-kernel timing: the same forward code recorded into a Recorder that submits after every dispatch, so
// each kernel runs in its own timestamped compute pass. Bytes and FLOPs per dispatch come from the tensors
// it binds and its params (a minimum-traffic model: every input read once, every output written once),
// which turns GPU time into achieved GB/s and TFLOP/s.
import type { Gpu } from "../gpu/device.ts";
import { Recorder } from "../gpu/recorder.ts";
import { elementsPerWord, type Tensor } from "../gpu/tensor.ts";
import { type GpuTimer, nsToMs } from "./gpu_timer.ts";

type DispatchOpts = Parameters<Recorder["dispatch"]>[1];

export interface DispatchCost {
  kernel: string;
  /** Kernel + weight name with layer numbers wildcarded: one row per distinct op. */
  op: string;
  bytes: number;
  flops: number;
  /** "model": bytes from the op's semantics; "bindings": Σ bound tensor sizes (an upper bound). */
  bytesModel: "model" | "bindings";
}

const num = (p: unknown) => (typeof p === "number" ? p : 0);

/** A weight/tensor label with the layer number wildcarded and the model prefixes shortened. */
export function shortName(label: string): string {
  return label
    .replace(/^language_model\.model\.layers\.\d+\./, "lm.*.")
    .replace(/^vision_model\.encoder\.layers\.\d+\./, "vit.*.")
    .replace(/^language_model\.model\./, "lm.")
    .replace(/^language_model\./, "lm.")
    .replace(/\.L\d+\./, ".L*.")
    .replace(/\.weight$/, "");
}

/** Minimum bytes moved and FLOPs of one dispatch of a kernel from src/ops. */
export function dispatchCost(kernel: string, o: DispatchOpts): DispatchCost {
  const b: Tensor[] = o.bindings;
  const p = o.params ?? [];
  const op = `${kernel} ${shortName((o.label ?? kernel).replace(/^\S+\s*/, ""))}`.trim();
  const sum = (ts: Tensor[]) => ts.reduce((s, t) => s + t.byteLength, 0);
  // K/V bytes per element: the attention kernels run as `NAME+kv_bf16` on a bf16 cache (KV_CACHE_DTYPE).
  const kvE = b[1] ? 4 / elementsPerWord(b[1].dtype) : 4;
  switch (kernel.split("+")[0]) {
    case "linear_matvec":
    case "linear_tiled": {
      // bindings: x [T, K], w [N, K], scale|any, bias|any, out [T, N]; params carry has_scale, has_bias
      const [x, w, scale, bias, out] = b;
      const [T, K] = x.shape, N = w.shape[0];
      const hasScale = num(p[kernel === "linear_matvec" ? 3 : 4]),
        hasBias = num(p[kernel === "linear_matvec" ? 4 : 5]);
      const bytes = x.byteLength + w.byteLength + out.byteLength + (hasScale ? scale.byteLength : 0) +
        (hasBias ? bias.byteLength : 0);
      return { kernel, op, bytes, flops: 2 * T * N * K, bytesModel: "model" };
    }
    case "matvec_i8":
    case "matvec_i8_vec": {
      // bindings: x [T, K], g|any, w1 [N, K], s1 [N], w3|w1, s3|any, bias|any, out [T, N]; params
      // [N, k4, eps, has_bias, groups_per_row, accumulate]; MODE 0 linear, 1 norm + linear, 2 gate/up
      const [x, g, w1, s1, w3, s3, bias, out] = b;
      const mode = o.constants?.MODE ?? 0;
      const [T, K] = x.shape, N = w1.shape[0];
      const bytes = x.byteLength + w1.byteLength + s1.byteLength + (mode > 0 ? g.byteLength : 0) +
        (mode === 2 ? w3.byteLength + s3.byteLength : 0) + (num(p[3]) ? bias.byteLength : 0) +
        out.byteLength * (num(p[5]) ? 2 : 1);
      return { kernel, op, bytes, flops: 2 * T * N * K * (mode === 2 ? 2 : 1), bytesModel: "model" };
    }
    case "matvec_dp4a": {
      // bindings: q [≥T, K/4] u32 (twice), xs, w [N, K/4] (twice), s, out [T, N], outliers, values, w3 (twice),
      // s3; GLU reads w3 too; outlier columns not counted (the weight bytes they touch are a few lines)
      const [q, , , w, , s1, out, , , w3, , s3] = b;
      const glu = o.constants?.GLU === 1;
      const [T, N] = out.shape, K = 4 * q.shape[1];
      const bytes = T * K + w.byteLength + s1.byteLength + (glu ? w3.byteLength + s3.byteLength : 0) +
        out.byteLength * (!glu && num(p[4]) ? 2 : 1);
      return { kernel, op, bytes, flops: 2 * T * N * K * (glu ? 2 : 1), bytesModel: "model" };
    }
    case "attention_decode": {
      // params [B, S, kv_len, H, Hkv, chunk, splits, scale, one_sequence, max_pos]; bindings q (or qkv when
      // FUSED), k, v, valid, out, partial|out, rope|valid, positions|valid. Each K/V row once per sample, the
      // queries (the whole qkv row when FUSED: its key and value go to the cache) and one partial per split.
      const [B, , kvLen, H, Hkv, , splits, , one] = p.map(num);
      const Dh = b[4].shape[1] / H;
      const keys = one ? B * kvLen + (B * (B - 1)) / 2 : B * kvLen; // one sequence: row b sees kvLen + b
      const kv = (one ? kvLen + B - 1 : B * kvLen) * Hkv * Dh * kvE * 2 + (one ? kvLen + B : B * kvLen) * 4;
      const fused = o.constants?.FUSED ? 2 * B * Hkv * Dh * kvE : 0; // the new key and value written
      const partials = splits > 1 ? splits * B * H * (Dh + 4) * 4 : b[4].byteLength;
      const flops = 4 * keys * H * Dh;
      return { kernel, op, bytes: b[0].byteLength + kv + fused + partials, flops, bytesModel: "model" };
    }
    case "attention_causal": {
      // params [B, T, H, Hkv, Dh, S, startPos, chunk, splits, scale]; bindings q, k, v, valid, out, scratch
      const [B, T, H, Hkv, Dh, , startPos, , splits] = p.map(num);
      const kv = B * (startPos + T) * Hkv * Dh * kvE * 2 + B * (startPos + T) * 4;
      const partials = splits > 1 ? splits * B * T * H * (Dh + 2) * 4 : b[4].byteLength;
      const flops = 4 * B * T * H * Dh * (startPos + (T + 1) / 2);
      return { kernel, op, bytes: b[0].byteLength + kv + partials, flops, bytesModel: "model" };
    }
    case "attention_prefill":
    case "attention_prefill_rows": {
      // params [T, H, Hkv, Dh, S, startPos, GR, scale]; grid z = B; bindings q, k, v, valid, out
      const [T, H, Hkv, Dh, , startPos] = p.map(num);
      const B = o.workgroups instanceof Array ? o.workgroups[2] ?? 1 : 1;
      const kv = B * (startPos + T) * Hkv * Dh * kvE * 2 + B * (startPos + T) * 4;
      const flops = 4 * B * T * H * Dh * (startPos + (T + 1) / 2);
      return { kernel, op, bytes: b[0].byteLength + kv + b[4].byteLength, flops, bytesModel: "model" };
    }
    case "attention_causal_combine": {
      const [, Dh, splits, rows] = p.map(num);
      return {
        kernel,
        op,
        bytes: splits * rows * (Dh + 2) * 4 + b[1].byteLength,
        flops: 0,
        bytesModel: "model",
      };
    }
    case "attention_full":
    case "attention_full_rows": {
      // params [T, H, Dh, scale]; grid z = tiles; K/V tiles are re-read from L2 per query tile, not counted
      const [T, H, Dh] = p.map(num);
      const B = o.workgroups instanceof Array ? o.workgroups[2] ?? 1 : 1;
      return { kernel, op, bytes: sum(b), flops: 4 * B * H * T * T * Dh, bytesModel: "model" };
    }
    case "kv_write":
      // writes T new rows into a big cache: traffic is the new rows read + written
      return { kernel, op, bytes: 2 * b[0].byteLength, flops: 0, bytesModel: "model" };
    case "embed_tokens": {
      // gathers T rows of the bf16 table (+ image rows) into out [T, D] f32
      const out = b[4];
      return { kernel, op, bytes: out.byteLength * 1.5 + b[1].byteLength * 2, flops: 0, bytesModel: "model" };
    }
    case "rope": {
      // x [T, nH·Dh] rotated in place (read + write) and T rows of each cos/sin table, not the whole tables
      const [x, positions, cos] = b;
      const rows = 2 * x.shape[0] * cos.shape[1] * 4;
      return {
        kernel,
        op,
        bytes: 2 * x.byteLength + positions.byteLength + rows,
        flops: 0,
        bytesModel: "model",
      };
    }
    case "residual_add":
      // acc is read and written; y read; the per-column scale is negligible
      return { kernel, op, bytes: 2 * b[0].byteLength + b[1].byteLength, flops: 0, bytesModel: "model" };
    case "fill_random":
      return { kernel, op, bytes: b[0].byteLength, flops: 0, bytesModel: "model" };
    default:
      return { kernel, op, bytes: sum(b), flops: 0, bytesModel: "bindings" };
  }
}

/** A Recorder that runs every dispatch in its own pass (labelled for the timer) and keeps its cost. */
export class PerDispatchRecorder extends Recorder {
  readonly costs: DispatchCost[] = [];

  constructor(gpu: Gpu, label: string, private readonly timer: GpuTimer) {
    super(gpu, label);
  }

  override dispatch(kernel: string, opts: DispatchOpts): void {
    super.dispatch(kernel, opts);
    const cost = dispatchCost(kernel, opts);
    this.costs.push(cost);
    this.timer.label(cost.op);
    this.submit();
  }
}

export interface KernelRow {
  op: string;
  kernel: string;
  dispatches: number;
  ms: number;
  GBps: number;
  TFLOPs: number;
  /** GB/s over the copy kernel's GB/s. */
  bwFraction: number | null;
  share: number;
  bytesModel: string;
}

/**
 * Runs `record` once through a PerDispatchRecorder with timestamps and aggregates per op.
 * Returns null without timestamp-query (one ~11 ms wait per kernel would swamp every figure).
 */
export async function profileKernels(
  gpu: Gpu,
  timer: GpuTimer,
  label: string,
  record: (r: Recorder) => void,
  copyGBps: number | null,
): Promise<{ rows: KernelRow[]; totalMs: number; dispatches: number } | null> {
  if (!timer.hasTimestamps) return null;
  const r = new PerDispatchRecorder(gpu, label, timer);
  timer.start(label);
  record(r);
  r.submit();
  const stamps = await timer.collect();
  if (timer.dropped) throw new Error(`${label}: more than 2048 dispatches to profile`);
  if (stamps.length !== r.costs.length) {
    throw new Error(`${label}: ${stamps.length} timed passes for ${r.costs.length} dispatches`);
  }
  const byOp = new Map<string, { cost: DispatchCost; n: number; ms: number; bytes: number; flops: number }>();
  stamps.forEach((s, i) => {
    const c = r.costs[i];
    const row = byOp.get(c.op) ?? { cost: c, n: 0, ms: 0, bytes: 0, flops: 0 };
    row.n++;
    row.ms += nsToMs(s.endNs - s.beginNs);
    row.bytes += c.bytes;
    row.flops += c.flops;
    byOp.set(c.op, row);
  });
  const totalMs = [...byOp.values()].reduce((s, x) => s + x.ms, 0);
  const rows = [...byOp.values()].map((x) => {
    const GBps = x.bytes / (x.ms * 1e6);
    return {
      op: x.cost.op,
      kernel: x.cost.kernel,
      dispatches: x.n,
      ms: x.ms,
      GBps,
      TFLOPs: x.flops / (x.ms * 1e9),
      bwFraction: copyGBps ? GBps / copyGBps : null,
      share: x.ms / totalMs,
      bytesModel: x.cost.bytesModel,
    };
  }).sort((a, b) => b.ms - a.ms);
  return { rows, totalMs, dispatches: r.costs.length };
}
