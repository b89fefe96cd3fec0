import assert from "node:assert/strict";
import { join } from "node:path";
import { openCheckpoint } from "../../src/weights/checkpoint.ts";
import { ModelFileError } from "../../src/weights/model_file_error.ts";
import {
  bytesOf,
  encodeSafetensors,
  FIXTURE_MODEL_DIR,
  FIXTURE_SAFETENSORS,
  parseSafetensorsBytes,
  withTempDir,
  writeSafetensors,
  writeShardedFixture,
} from "./safetensors_files.ts";

const fixtureTensors = parseSafetensorsBytes(await Deno.readFile(FIXTURE_SAFETENSORS));

function assertModelFileError(message: string | RegExp) {
  return (err: unknown) => {
    assert.ok(err instanceof ModelFileError, `expected ModelFileError, got ${err}`);
    if (typeof message === "string") assert.equal(err.message, message);
    else assert.match(err.message, message);
    return true;
  };
}

Deno.test("openCheckpoint reads every fixture tensor byte-identical to the file", async () => {
  const checkpoint = await openCheckpoint(FIXTURE_MODEL_DIR);
  try {
    assert.equal(checkpoint.tensors.size, fixtureTensors.length);
    assert.deepEqual(checkpoint.files, [FIXTURE_SAFETENSORS]);
    for (const t of fixtureTensors) {
      const info = checkpoint.info(t.name);
      assert.equal(info.dtype, t.dtype, t.name);
      assert.deepEqual(info.shape, t.shape, t.name);
      assert.equal(info.byteLength, t.data.byteLength, t.name);
      assert.deepEqual(await checkpoint.readBytes(t.name), t.data, t.name);
    }
    assert.equal(checkpoint.bytesRead, checkpoint.totalBytes);
  } finally {
    await checkpoint.close();
  }
});

Deno.test("a 3-shard copy with model.safetensors.index.json loads byte-identical", async () => {
  await withTempDir(async (dir) => {
    const weightMap = await writeShardedFixture(dir, 3);
    const checkpoint = await openCheckpoint(dir);
    try {
      assert.deepEqual(checkpoint.files.map((f) => f.slice(dir.length + 1)), [
        "model-00001-of-00003.safetensors",
        "model-00002-of-00003.safetensors",
        "model-00003-of-00003.safetensors",
      ]);
      assert.equal(checkpoint.tensors.size, fixtureTensors.length);
      for (const t of fixtureTensors) {
        const info = checkpoint.info(t.name);
        assert.equal(info.file, join(dir, weightMap[t.name]), t.name);
        assert.equal(info.dtype, t.dtype, t.name);
        assert.deepEqual(info.shape, t.shape, t.name);
        assert.deepEqual(await checkpoint.readBytes(t.name), t.data, t.name);
      }
    } finally {
      await checkpoint.close();
    }
  });
});

Deno.test("concurrent reads from one shard each get their own tensor's bytes", async () => {
  const checkpoint = await openCheckpoint(FIXTURE_MODEL_DIR);
  try {
    const all = await Promise.all(fixtureTensors.map((t) => checkpoint.readBytes(t.name)));
    fixtureTensors.forEach((t, i) => assert.deepEqual(all[i], t.data, t.name));
  } finally {
    await checkpoint.close();
  }
});

Deno.test("onProgress reports monotonically growing bytes that end at totalBytes", async () => {
  const calls: [number, number][] = [];
  const checkpoint = await openCheckpoint(FIXTURE_MODEL_DIR, {
    onProgress: (read, total) => calls.push([read, total]),
  });
  try {
    assert.equal(calls.length, 0, "opening reads headers only");
    const expectedTotal = fixtureTensors.reduce((sum, t) => sum + t.data.byteLength, 0);
    assert.equal(checkpoint.totalBytes, expectedTotal);
    for (const t of fixtureTensors) await checkpoint.readBytes(t.name);
    assert.ok(calls.length >= fixtureTensors.length);
    for (let i = 1; i < calls.length; i++) assert.ok(calls[i][0] > calls[i - 1][0]);
    assert.deepEqual(calls.at(-1), [expectedTotal, expectedTotal]);
  } finally {
    await checkpoint.close();
  }
});

Deno.test("readFloat32 widens BF16, F16 and F32 exactly", async () => {
  await withTempDir(async (dir) => {
    // bf16 is the high half of the f32 bit pattern.
    const bf16 = new Uint16Array([0x3f80, 0xc020, 0x0000, 0x8000, 0x7f80, 0x3eab]);
    const bf16Expected = [
      1,
      -2.5,
      0,
      -0,
      Infinity,
      new Float32Array(new Uint32Array([0x3eab0000]).buffer)[0],
    ];
    // f16: 1, -2, smallest subnormal 2^-24, largest finite 65504, -inf, 0.5, a subnormal 3·2^-24.
    const f16 = new Uint16Array([0x3c00, 0xc000, 0x0001, 0x7bff, 0xfc00, 0x3800, 0x0003]);
    const f16Expected = [1, -2, 2 ** -24, 65504, -Infinity, 0.5, 3 * 2 ** -24];
    const f32 = new Float32Array([1.5, -3.25, 1e-30, 7]);
    await writeSafetensors(join(dir, "model.safetensors"), [
      { name: "a", dtype: "BF16", shape: [2, 3], data: bytesOf(bf16) },
      { name: "b", dtype: "F16", shape: [7], data: bytesOf(f16) },
      { name: "c", dtype: "F32", shape: [4], data: bytesOf(f32) },
      { name: "nan", dtype: "F16", shape: [1], data: bytesOf(new Uint16Array([0x7e00])) },
    ]);
    const checkpoint = await openCheckpoint(dir);
    try {
      assert.deepEqual([...await checkpoint.readFloat32("a", [2, 3])], bf16Expected);
      assert.deepEqual([...await checkpoint.readFloat32("b")], f16Expected);
      assert.deepEqual([...await checkpoint.readFloat32("c")], [...f32]);
      assert.ok(Number.isNaN((await checkpoint.readFloat32("nan"))[0]));
    } finally {
      await checkpoint.close();
    }
  });
});

Deno.test("readFloat32 of a fixture BF16 tensor matches an independent widening of its bytes", async () => {
  const checkpoint = await openCheckpoint(FIXTURE_MODEL_DIR);
  try {
    const raw = fixtureTensors.find((t) => t.name === "vision_model.embeddings.position_embedding")!;
    assert.equal(raw.dtype, "BF16");
    const values = await checkpoint.readFloat32(raw.name, [1, 1025, 64]);
    const view = new DataView(raw.data.buffer);
    for (let i = 0; i < values.length; i++) {
      const bits = view.getUint16(2 * i, true) << 16;
      const f = new DataView(new ArrayBuffer(4));
      f.setUint32(0, bits >>> 0);
      assert.equal(values[i], f.getFloat32(0));
    }
  } finally {
    await checkpoint.close();
  }
});

Deno.test("tensor lookup errors name the tensor, the directory and both shapes", async (t) => {
  const checkpoint = await openCheckpoint(FIXTURE_MODEL_DIR);
  try {
    await t.step("a missing tensor", async () => {
      assert.equal(checkpoint.has("language_model.model.layers.9.attention.wo.weight"), false);
      await assert.rejects(
        checkpoint.readFloat32("language_model.model.layers.9.attention.wo.weight"),
        assertModelFileError(
          `Tensor "language_model.model.layers.9.attention.wo.weight" is not in the checkpoint at ${FIXTURE_MODEL_DIR}`,
        ),
      );
      assert.throws(
        () => checkpoint.readBytes("nope"),
        assertModelFileError(/^Tensor "nope" is not in the checkpoint/),
      );
    });
    await t.step("a shape that disagrees with the config", async () => {
      await assert.rejects(
        checkpoint.readFloat32("mlp1.3.weight", [64, 65]),
        assertModelFileError(
          `Tensor "mlp1.3.weight" in ${FIXTURE_SAFETENSORS} has shape [64, 64], but the config expects [64, 65]`,
        ),
      );
    });
    await t.step("an int8 tensor read as float", async () => {
      await assert.rejects(
        checkpoint.readFloat32("mlp1.1.weight"),
        assertModelFileError(
          `Tensor "mlp1.1.weight" in ${FIXTURE_SAFETENSORS} is I8, not a float tensor; int8 weights are read with readLinear`,
        ),
      );
    });
  } finally {
    await checkpoint.close();
  }
  await t.step("a read after close", async () => {
    await assert.rejects(checkpoint.readBytes("mlp1.3.bias"), {
      message: `Checkpoint at ${FIXTURE_MODEL_DIR} is closed`,
    });
  });
});

Deno.test("openCheckpoint rejects broken safetensors files with the reason", async (t) => {
  const good = encodeSafetensors([
    { name: "w", dtype: "F32", shape: [2, 2], data: bytesOf(new Float32Array([1, 2, 3, 4])) },
  ]);
  const headerLength = Number(new DataView(good.buffer).getBigUint64(0, true));
  const cases: [string, Uint8Array, string | RegExp][] = [
    [
      "a file shorter than the length prefix",
      good.slice(0, 5),
      /model\.safetensors is 5 bytes, too short .* truncated$/,
    ],
    [
      "a header length past the end of the file",
      good.slice(0, 8 + headerLength - 4),
      new RegExp(
        `header length ${headerLength} runs past the end of the file \\(${8 + headerLength - 4} bytes\\)`,
      ),
    ],
    [
      "a data range past the end of the file",
      good.slice(0, good.length - 3),
      /tensor "w" needs data bytes \[0, 16\) but the data section has only 13 bytes; the file is truncated$/,
    ],
    [
      "an unknown dtype",
      encodeSafetensors([{ name: "ids", dtype: "I64", shape: [2], data: new Uint8Array(16) }]),
      /tensor "ids" has unknown dtype "I64"; supported: BF16, F16, F32, I8, U8$/,
    ],
    [
      "data_offsets that disagree with dtype and shape",
      encodeSafetensors([{ name: "w", dtype: "BF16", shape: [3], data: new Uint8Array(4) }]),
      /tensor "w" spans 4 bytes, but BF16 \[3\] needs 6$/,
    ],
    [
      "a header that is not JSON",
      (() => {
        const bad = good.slice();
        bad[8] = 0x5b; // "[" then garbage
        bad[9] = 0x7d;
        return bad;
      })(),
      /the header is not valid JSON/,
    ],
  ];
  for (const [what, bytes, message] of cases) {
    await t.step(what, async () => {
      await withTempDir(async (dir) => {
        await Deno.writeFile(join(dir, "model.safetensors"), bytes);
        await assert.rejects(openCheckpoint(dir), assertModelFileError(message));
      });
    });
  }
  await t.step("a directory with neither weights file", async () => {
    await withTempDir(async (dir) => {
      await assert.rejects(
        openCheckpoint(dir),
        assertModelFileError(
          `No model.safetensors or model.safetensors.index.json in ${dir}; point the model directory at an HF ` +
            "safetensors checkpoint",
        ),
      );
    });
  });
});

Deno.test("a file truncated after opening fails the read with a truncation error", async () => {
  await withTempDir(async (dir) => {
    const path = join(dir, "model.safetensors");
    await writeSafetensors(path, [{ name: "w", dtype: "U8", shape: [64], data: new Uint8Array(64).fill(7) }]);
    const checkpoint = await openCheckpoint(dir);
    try {
      await Deno.truncate(path, (await Deno.stat(path)).size - 10);
      await assert.rejects(
        checkpoint.readBytes("w"),
        assertModelFileError(/ended at byte \d+, .* the file is truncated$/),
      );
    } finally {
      await checkpoint.close();
    }
  });
});

Deno.test("openCheckpoint rejects a bad model.safetensors.index.json", async (t) => {
  await t.step("a shard named in weight_map is missing", async () => {
    await withTempDir(async (dir) => {
      await writeShardedFixture(dir, 3);
      await Deno.remove(join(dir, "model-00002-of-00003.safetensors"));
      await assert.rejects(
        openCheckpoint(dir),
        assertModelFileError(
          new RegExp(
            `^${join(dir, "model.safetensors.index.json")} maps tensors \\(e\\.g\\. "[^"]+"\\) to shard ` +
              `model-00002-of-00003\\.safetensors, which is missing from ${dir}$`,
          ),
        ),
      );
    });
  });
  await t.step("a tensor that its shard does not hold", async () => {
    await withTempDir(async (dir) => {
      const weightMap = await writeShardedFixture(dir, 3);
      weightMap["mlp1.3.weight"] = weightMap["mlp1.3.weight"] === "model-00001-of-00003.safetensors"
        ? "model-00002-of-00003.safetensors"
        : "model-00001-of-00003.safetensors";
      await Deno.writeTextFile(
        join(dir, "model.safetensors.index.json"),
        JSON.stringify({ metadata: { total_size: 1 }, weight_map: weightMap }),
      );
      await assert.rejects(
        openCheckpoint(dir),
        assertModelFileError(
          new RegExp(
            `says tensor "mlp1\\.3\\.weight" is in ${weightMap["mlp1.3.weight"]}, but that shard's header`,
          ),
        ),
      );
    });
  });
  await t.step("weight_map missing, not JSON, or pointing outside the directory", async () => {
    await withTempDir(async (dir) => {
      const index = join(dir, "model.safetensors.index.json");
      await Deno.writeTextFile(index, JSON.stringify({ metadata: { total_size: 0 } }));
      await assert.rejects(
        openCheckpoint(dir),
        assertModelFileError(new RegExp(`^${index}: weight_map is invalid`)),
      );
      await Deno.writeTextFile(index, "{");
      await assert.rejects(
        openCheckpoint(dir),
        assertModelFileError(new RegExp(`^${index} is not valid JSON`)),
      );
      await Deno.writeTextFile(index, JSON.stringify({ weight_map: { w: "../model.safetensors" } }));
      await assert.rejects(
        openCheckpoint(dir),
        assertModelFileError(new RegExp(`^${index}: weight_map\\.w is invalid`)),
      );
      await Deno.writeTextFile(index, JSON.stringify({ weight_map: {} }));
      await assert.rejects(openCheckpoint(dir), assertModelFileError(`${index}: weight_map is empty`));
    });
  });
});
