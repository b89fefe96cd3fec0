import assert from "node:assert/strict";
import { join } from "node:path";
import { openCheckpoint } from "../../src/weights/checkpoint.ts";
import { dequantizeInt8 } from "../../src/weights/linear.ts";
import { ModelFileError } from "../../src/weights/model_file_error.ts";
import {
  bytesOf,
  FIXTURE_MODEL_DIR,
  FIXTURE_SAFETENSORS,
  type RawTensor,
  withTempDir,
  writeSafetensors,
} from "./safetensors_files.ts";

const manifest = JSON.parse(
  await Deno.readTextFile(new URL("../fixtures/tiny-internvl/goldens/manifest.json", import.meta.url)),
);
const goldens = new URL("../fixtures/tiny-internvl/goldens/", import.meta.url);

async function readF32(file: string): Promise<Float32Array> {
  const bytes = await Deno.readFile(new URL(file, goldens));
  return new Float32Array(bytes.buffer, 0, bytes.byteLength / 4);
}

Deno.test("readLinear returns the fixture's int8 mlp1.1 with SCB and bias as stored", async () => {
  const checkpoint = await openCheckpoint(FIXTURE_MODEL_DIR);
  try {
    const linear = await checkpoint.readLinear("mlp1.1", { outFeatures: 64, inFeatures: 256, bias: true });
    assert.equal(linear.kind, "int8");
    if (linear.kind !== "int8") return;
    assert.equal(linear.weight.length, 64 * 256);
    assert.equal(linear.scb.length, 64);
    // Values read with numpy from model.safetensors.
    assert.deepEqual([...linear.weight.subarray(0, 4)], [-67, -1, -79, -16]);
    assert.equal(linear.weight[63 * 256 + 255], -24);
    assert.deepEqual([...linear.scb.subarray(0, 2)], [0.2353515625, 0.251953125]);
    assert.equal(linear.scb[63], 0.20703125);
    assert.deepEqual([...linear.bias!.subarray(0, 3)], [-0.04150390625, -0.004852294921875, -0.061279296875]);

    // numpy: (int8.astype(f32) * SCB[:, None]) / f32(127)
    const w = dequantizeInt8(linear.weight, linear.scb, 64, 256);
    assert.deepEqual([...w.subarray(0, 4)], [
      -0.12416184693574905,
      -0.001853161957114935,
      -0.14639979600906372,
      -0.02965059131383896,
    ]);
    assert.equal(w[63 * 256 + 255], -0.0391240157186985);
  } finally {
    await checkpoint.close();
  }
});

Deno.test("readLinear returns the BF16 mlp1.3 as a float Linear, decided by its dtype", async () => {
  const checkpoint = await openCheckpoint(FIXTURE_MODEL_DIR);
  try {
    const linear = await checkpoint.readLinear("mlp1.3", { outFeatures: 64, inFeatures: 64 });
    assert.equal(linear.kind, "float");
    if (linear.kind !== "float") return;
    assert.equal(linear.dtype, "BF16");
    assert.deepEqual([...linear.weight.subarray(0, 3)], [0.031982421875, 0.0146484375, 0.06591796875]);
    assert.equal(linear.bias?.length, 64);
  } finally {
    await checkpoint.close();
  }
});

Deno.test("every manifest int8 module reads as int8 and every other Linear-shaped weight as float", async () => {
  const checkpoint = await openCheckpoint(FIXTURE_MODEL_DIR);
  try {
    const int8Modules = new Set<string>(manifest.int8_modules);
    for (const [name, info] of checkpoint.tensors) {
      if (!name.endsWith(".weight") || info.shape.length !== 2) continue;
      const prefix = name.slice(0, -".weight".length);
      const [outFeatures, inFeatures] = info.shape;
      const linear = await checkpoint.readLinear(prefix, { outFeatures, inFeatures });
      assert.equal(linear.kind, int8Modules.has(prefix) ? "int8" : "float", prefix);
      int8Modules.delete(prefix);
    }
    assert.deepEqual([...int8Modules], [], "int8 modules not found as 2-D weights");
  } finally {
    await checkpoint.close();
  }
});

// Abramowitz & Stegun 7.1.26, |error| < 1.5e-7: far below the 1e-5 tolerance of the check that uses it.
function erf(x: number): number {
  const t = 1 / (1 + 0.3275911 * Math.abs(x));
  const y = 1 -
    ((((1.061405429 * t - 1.453152027) * t + 1.421413741) * t - 0.284496736) * t + 0.254829592) * t *
      Math.exp(-x * x);
  return x >= 0 ? y : -y;
}

Deno.test("dequantized fixture weights reproduce the golden mlp1 projector output", async () => {
  // mlp1 = LayerNorm(4·Hv, eps 1e-5) → Linear int8 (mlp1.1) → GELU(erf) → Linear bf16 (mlp1.3), in f64 here.
  const checkpoint = await openCheckpoint(FIXTURE_MODEL_DIR);
  try {
    const [T, K, D] = [256, 256, 64];
    const lnWeight = await checkpoint.readFloat32("mlp1.0.weight", [K]);
    const lnBias = await checkpoint.readFloat32("mlp1.0.bias", [K]);
    const fc1 = await checkpoint.readLinear("mlp1.1", { outFeatures: D, inFeatures: K, bias: true });
    const fc2 = await checkpoint.readLinear("mlp1.3", { outFeatures: D, inFeatures: D, bias: true });
    assert.ok(fc1.kind === "int8" && fc2.kind === "float");
    const w1 = dequantizeInt8(fc1.weight, fc1.scb, D, K); // [D, K]
    const x = await readF32("img1.pixel_shuffled.f32.bin"); // [T, K]
    const golden = await readF32("img1.mlp1_out.f32.bin"); // [T, D]
    let maxDiff = 0;
    const normed = new Float64Array(K);
    const hidden = new Float64Array(D);
    for (let t = 0; t < T; t++) {
      const row = x.subarray(t * K, (t + 1) * K);
      const mean = row.reduce((a, v) => a + v, 0) / K;
      const variance = row.reduce((a, v) => a + (v - mean) ** 2, 0) / K;
      for (let k = 0; k < K; k++) {
        normed[k] = (row[k] - mean) / Math.sqrt(variance + 1e-5) * lnWeight[k] + lnBias[k];
      }
      for (let o = 0; o < D; o++) {
        let acc = fc1.bias![o];
        for (let k = 0; k < K; k++) acc += w1[o * K + k] * normed[k];
        hidden[o] = 0.5 * acc * (1 + erf(acc / Math.SQRT2));
      }
      for (let o = 0; o < D; o++) {
        let acc = fc2.bias![o];
        for (let k = 0; k < D; k++) acc += fc2.weight[o * D + k] * hidden[k];
        maxDiff = Math.max(maxDiff, Math.abs(acc - golden[t * D + o]));
      }
    }
    assert.ok(maxDiff <= 1e-5, `max |Δ| ${maxDiff} vs golden mlp1_out`);
  } finally {
    await checkpoint.close();
  }
});

Deno.test("dequantizeInt8 rounds to f32 after the multiply and after the divide, as torch does", () => {
  // SCB bits 1076838339 ≈ 2.7382667: one f64 rounding would give -2.652022123336792.
  const scb = new Float32Array(new Uint32Array([1076838339]).buffer);
  const w = dequantizeInt8(new Int8Array([-123, 127]), scb, 1, 2);
  assert.equal(w[0], -2.652021884918213);
  assert.equal(w[1], scb[0]);
  assert.throws(() => dequantizeInt8(new Int8Array(6), new Float32Array(2), 2, 2), RangeError);
});

/** A 2×3 bitsandbytes Linear "lin" with an optional weight_format value and optional extras. */
function int8Linear(weightFormat: number | null, extra: RawTensor[] = []): RawTensor[] {
  const tensors: RawTensor[] = [
    {
      name: "lin.weight",
      dtype: "I8",
      shape: [2, 3],
      data: bytesOf(new Int8Array([127, -127, 0, 1, 2, -3])),
    },
    { name: "lin.SCB", dtype: "F32", shape: [2], data: bytesOf(new Float32Array([0.5, 2])) },
    { name: "lin.bias", dtype: "BF16", shape: [2], data: bytesOf(new Uint16Array([0x3f80, 0xc000])) },
  ];
  if (weightFormat !== null) {
    tensors.push({ name: "lin.weight_format", dtype: "U8", shape: [], data: new Uint8Array([weightFormat]) });
  }
  return [...tensors, ...extra];
}

async function withLinearCheckpoint(tensors: RawTensor[], fn: (dir: string, file: string) => Promise<void>) {
  await withTempDir(async (dir) => {
    const file = join(dir, "model.safetensors");
    await writeSafetensors(file, tensors);
    await fn(dir, file);
  });
}

Deno.test("weight_format absent or 0 reads row-major int8; 1 (col32) is rejected", async (t) => {
  for (const format of [null, 0]) {
    await t.step(`weight_format ${format === null ? "absent" : format}`, async () => {
      await withLinearCheckpoint(int8Linear(format), async (dir) => {
        const checkpoint = await openCheckpoint(dir);
        try {
          const linear = await checkpoint.readLinear("lin", { outFeatures: 2, inFeatures: 3, bias: true });
          assert.equal(linear.kind, "int8");
          if (linear.kind !== "int8") return;
          assert.deepEqual([...linear.bias!], [1, -2]);
          assert.deepEqual([...dequantizeInt8(linear.weight, linear.scb, 2, 3)], [
            0.5,
            -0.5,
            0,
            Math.fround(2 / 127),
            Math.fround(4 / 127),
            Math.fround(-6 / 127),
          ]);
        } finally {
          await checkpoint.close();
        }
      });
    });
  }
  await t.step("weight_format 1", async () => {
    await withLinearCheckpoint(int8Linear(1), async (dir, file) => {
      const checkpoint = await openCheckpoint(dir);
      try {
        await assert.rejects(
          checkpoint.readLinear("lin", { outFeatures: 2, inFeatures: 3 }),
          {
            name: "ModelFileError",
            message:
              `Tensor "lin.weight_format" in ${file} is 1 (col32); only bitsandbytes weight_format 0 ("row") ` +
              "is supported, re-save the checkpoint with row-major int8 weights",
          },
        );
      } finally {
        await checkpoint.close();
      }
    });
  });
});

Deno.test("readLinear errors name the tensor and what is wrong", async (t) => {
  const cases: [
    string,
    RawTensor[],
    Parameters<typeof readLinearIn>[1],
    (file: string, dir: string) => string,
  ][] = [
    [
      "an int8 weight without SCB",
      int8Linear(0).filter((x) => x.name !== "lin.SCB"),
      { outFeatures: 2, inFeatures: 3 },
      (_file, dir) =>
        `Tensor "lin.weight" is I8 but "lin.SCB" is missing in ${dir}; an int8 weight needs its bitsandbytes row scales`,
    ],
    [
      "a weight shape that disagrees with the config",
      int8Linear(0),
      { outFeatures: 3, inFeatures: 2 },
      (file) => `Tensor "lin.weight" in ${file} has shape [2, 3], but the config expects [3, 2]`,
    ],
    [
      "an SCB of the wrong dtype",
      int8Linear(0).map((x) =>
        x.name === "lin.SCB" ? { ...x, dtype: "BF16", shape: [2], data: new Uint8Array(4) } : x
      ),
      { outFeatures: 2, inFeatures: 3 },
      (file) => `Tensor "lin.SCB" in ${file} is BF16; expected F32`,
    ],
    [
      "a required bias that is absent",
      int8Linear(0).filter((x) => x.name !== "lin.bias"),
      { outFeatures: 2, inFeatures: 3, bias: true },
      (_file, dir) => `Tensor "lin.bias" is not in the checkpoint at ${dir}`,
    ],
    [
      "a bias the config says should not exist",
      int8Linear(0),
      { outFeatures: 2, inFeatures: 3, bias: false },
      (_file, dir) =>
        `Tensor "lin.bias" is in the checkpoint at ${dir}, but the config says this Linear has no bias`,
    ],
    [
      "a U8 weight",
      [{ name: "lin.weight", dtype: "U8", shape: [2, 3], data: new Uint8Array(6) }],
      { outFeatures: 2, inFeatures: 3 },
      (file) => `Tensor "lin.weight" in ${file} is U8; a Linear weight must be I8 (with SCB) or BF16/F16/F32`,
    ],
    [
      "a missing weight",
      [],
      { outFeatures: 2, inFeatures: 3 },
      (_file, dir) => `Tensor "lin.weight" is not in the checkpoint at ${dir}`,
    ],
  ];
  for (const [what, tensors, shape, message] of cases) {
    await t.step(what, async () => {
      await withLinearCheckpoint(tensors, async (dir, file) => {
        await assert.rejects(readLinearIn(dir, shape), (err: unknown) => {
          assert.ok(err instanceof ModelFileError);
          assert.equal(err.message, message(file, dir));
          return true;
        });
      });
    });
  }
});

async function readLinearIn(dir: string, shape: { outFeatures: number; inFeatures: number; bias?: boolean }) {
  const checkpoint = await openCheckpoint(dir);
  try {
    return await checkpoint.readLinear("lin", shape);
  } finally {
    await checkpoint.close();
  }
}

Deno.test("the fixture's own weight_format tensors are U8 scalars equal to 0", async () => {
  // Guards the fixture assumption the weight_format tests build on (README: weight_format present).
  const checkpoint = await openCheckpoint(FIXTURE_MODEL_DIR);
  try {
    const formats = [...checkpoint.tensors.values()].filter((t) => t.name.endsWith(".weight_format"));
    assert.equal(formats.length, manifest.int8_modules.length);
    for (const f of formats) {
      assert.equal(f.file, FIXTURE_SAFETENSORS);
      assert.deepEqual([f.dtype, f.shape], ["U8", []]);
      assert.deepEqual([...await checkpoint.readBytes(f.name)], [0]);
    }
  } finally {
    await checkpoint.close();
  }
});
