import assert from "node:assert/strict";
import type { Gpu } from "../../src/gpu/device.ts";
import { preprocessImage } from "../../src/image/pixel_values.ts";
import { type Int8MatmulSetting, weightOnly } from "../../src/model/int8_matmul.ts";
import { InternVLModel } from "../../src/model/internvl.ts";
import type { Tensor } from "../../src/gpu/tensor.ts";
import type { Tap } from "../../src/model/vision.ts";
import { imageFile, manifest, tinyModel } from "./tiny_fixture.ts";

// The model keeps the vision encoder's scratch between encodeImages calls (VisionScratchPool). Reuse must
// be invisible in the output: every result is compared bit for bit with a model that keeps nothing.

interface Pixels {
  values: Float32Array;
  tiles: number;
}

async function pixels(key: string): Promise<Pixels> {
  const img = await preprocessImage(imageFile(key), { maxNum: manifest.images[key].max_num, maxPixels: 1e8 });
  assert.equal(img.tiles, manifest.images[key].num_tiles);
  return { values: img.pixelValues, tiles: img.tiles };
}

/** The tiny model's weights with a vision scratch budget of `budget` bytes (0: pooling off). */
async function modelWith(budget: number, matmul: Int8MatmulSetting = weightOnly): Promise<InternVLModel> {
  const t = await tinyModel();
  return InternVLModel.fromWeights(t.gpu, t.dims, t.vision, t.projector, t.language, matmul, budget);
}

/** A tap that notes the GPU buffers of the ViT's residual stream and the projector's output. */
function bufferTap() {
  const buffers: GPUBuffer[] = [];
  const tap: Tap = (name, layer, t) => {
    if ((name === "vit.layer" && layer === 0) || name === "projector.out") buffers.push(t.buffer);
  };
  return { tap, buffers };
}

/** The embeddings' bits (Uint32: equal bits, not merely equal values). */
async function encode(model: InternVLModel, p: Pixels, tap?: Tap, maxTilesPerPass?: number) {
  const out = model.encodeImages(p.values, p.tiles, tap, maxTilesPerPass);
  try {
    return new Uint32Array(await model.gpu.readBytes(out));
  } finally {
    out.buffer.destroy();
  }
}

let offModel: Promise<InternVLModel> | null = null;
const references = new Map<string, Promise<Uint32Array>>();

/** The embeddings of a model that keeps no scratch, once per image and pass size. */
function reference(key: string, p: Pixels, maxTilesPerPass?: number): Promise<Uint32Array> {
  const id = `${key}/${maxTilesPerPass ?? "all"}`;
  if (!references.has(id)) {
    offModel ??= modelWith(0);
    references.set(id, offModel.then((off) => encode(off, p, undefined, maxTilesPerPass)));
  }
  return references.get(id)!;
}

/** Equal bits; names the first difference (a diff of whole arrays from node:assert takes minutes). */
function assertSameBits(got: Uint32Array, want: Uint32Array, what = "embeddings") {
  assert.equal(got.length, want.length, what);
  const i = got.findIndex((x, j) => x !== want[j]);
  assert.equal(i, -1, `${what}: word ${i} differs (${got[i]} vs ${want[i]})`);
}

function assertSameBuffers(got: GPUBuffer[], want: GPUBuffer[], what: string) {
  assert.equal(got.length, want.length, what);
  got.forEach((b, i) => assert.ok(b === want[i], `${what}: buffer ${i} is another one`));
}

function assertOtherBuffers(got: GPUBuffer[], other: GPUBuffer[], what: string) {
  assert.equal(got.length, other.length, what);
  got.forEach((b, i) => assert.ok(!other.includes(b), `${what}: buffer ${i} is shared`));
}

/** Whether `b` was destroyed: a copy from it then fails validation (in a scope of its own, so the shared
 * device's fault stays clear). */
async function destroyed(gpu: Gpu, b: GPUBuffer): Promise<boolean> {
  const { device } = gpu;
  const dst = device.createBuffer({ label: "test.probe", size: 16, usage: GPUBufferUsage.COPY_DST });
  device.pushErrorScope("validation");
  const enc = device.createCommandEncoder();
  enc.copyBufferToBuffer(b, 0, dst, 0, 16);
  device.queue.submit([enc.finish()]);
  const err = await device.popErrorScope();
  dst.destroy();
  return err !== null;
}

Deno.test("two image requests of the same tile count share one scratch and match a model that keeps none", async () => {
  const pooled = await modelWith(2 ** 30), off = await modelWith(0);
  // One tile (img1): the point is that the second request takes the first one's scratch (the same buffers,
  // one allocation) and gets the bits of a model that keeps none; several tiles sharing one scratch are the
  // next test's subject. With 4-tile img2 this test encoded 20 tiles (~0.5 s each on llvmpipe), now 5.
  const img1 = await pixels("img1");
  try {
    const a = bufferTap(), b = bufferTap();
    const first = await encode(pooled, img1, a.tap);
    const second = await encode(pooled, img1, b.tap);
    assertSameBuffers(b.buffers, a.buffers, "second request");
    assert.equal(pooled.visionScratch.allocations, 1);
    assert.equal(pooled.visionScratch.reuses, 1);
    assert.equal(pooled.visionScratch.heldTiles, 1);
    assert.ok(pooled.visionScratch.heldBytes > 0);
    // The same check tells apart the buffers of a model that keeps nothing.
    const c = bufferTap(), d = bufferTap();
    await encode(off, img1, c.tap);
    await encode(off, img1, d.tap);
    assertOtherBuffers(d.buffers, c.buffers, "pooling off");
    assert.equal(off.visionScratch.heldTiles, 0);
    const want = await reference("img1", img1);
    assertSameBits(first, want);
    assertSameBits(second, want);
  } finally {
    pooled.releaseScratch();
  }
});

Deno.test("fewer tiles run in the front of the kept scratch; more tiles replace it while it fits the budget", async () => {
  const pooled = await modelWith(2 ** 30);
  const keys = ["img1", "img2", "img4"];
  const [img1, img2, img4] = await Promise.all(keys.map(pixels));
  try {
    const four = bufferTap();
    await encode(pooled, img2, four.tap);
    const bytes4 = pooled.visionScratch.heldBytes;
    // One tile in the 4-tile scratch (img1; the 3-tile img3 ran the same code and cost the suite two
    // encodes), then a pass of 3 + 1 tiles below.
    for (const [key, p] of [["img1", img1]] as const) {
      const t = bufferTap();
      assertSameBits(await encode(pooled, p, t.tap), await reference(key, p), key);
      assertSameBuffers(t.buffers, four.buffers, key);
      assert.equal(pooled.visionScratch.heldTiles, 4, key);
      assert.equal(pooled.visionScratch.heldBytes, bytes4, key);
    }
    assert.equal(pooled.visionScratch.allocations, 1);
    // Passes of 3 + 1 tiles, both in the 4-tile scratch.
    assertSameBits(await encode(pooled, img2, undefined, 3), await reference("img2", img2, 3));
    assert.equal(pooled.visionScratch.allocations, 1);

    const five = bufferTap();
    assertSameBits(await encode(pooled, img4, five.tap), await reference("img4", img4), "5 tiles");
    assertOtherBuffers(five.buffers, four.buffers, "5 tiles");
    assert.equal(pooled.visionScratch.allocations, 2);
    assert.equal(pooled.visionScratch.heldTiles, 5);
    assert.ok(pooled.visionScratch.heldBytes > bytes4);
    const again = bufferTap();
    assertSameBits(await encode(pooled, img2, again.tap), await reference("img2", img2), "4 after 5");
    assertSameBuffers(again.buffers, five.buffers, "4 tiles after 5");
    assert.equal(pooled.visionScratch.heldTiles, 5);
  } finally {
    pooled.releaseScratch();
  }
});

Deno.test("the pool keeps no scratch past its budget and keeps its own when a request needs more", async () => {
  const [img1, img2] = await Promise.all(["img1", "img2"].map(pixels));
  const probe = await modelWith(2 ** 30);
  await encode(probe, img1);
  const oneTile = probe.visionScratch.heldBytes;
  probe.releaseScratch();

  const tight = await modelWith(oneTile - 1);
  assertSameBits(await encode(tight, img1), await reference("img1", img1));
  assert.equal(tight.visionScratch.heldTiles, 0);
  assert.equal(tight.visionScratch.heldBytes, 0);
  await encode(tight, img1);
  assert.equal(tight.visionScratch.allocations, 2);
  assert.equal(tight.visionScratch.reuses, 0);

  const exact = await modelWith(oneTile);
  try {
    const first = bufferTap(), big = bufferTap(), last = bufferTap();
    await encode(exact, img1, first.tap);
    assert.equal(exact.visionScratch.heldTiles, 1);
    assert.equal(exact.visionScratch.heldBytes, oneTile);
    // 4 tiles do not fit: built for the request and freed after it, the 1-tile scratch stays.
    assertSameBits(await encode(exact, img2, big.tap), await reference("img2", img2));
    assertOtherBuffers(big.buffers, first.buffers, "4 tiles");
    assert.ok(await destroyed(exact.gpu, big.buffers[0]), "the 4-tile scratch was kept");
    assert.equal(exact.visionScratch.heldTiles, 1);
    assertSameBits(await encode(exact, img1, last.tap), await reference("img1", img1));
    assertSameBuffers(last.buffers, first.buffers, "1 tile after 4");
    assert.equal(exact.visionScratch.allocations, 2);
  } finally {
    exact.releaseScratch();
  }
});

Deno.test("releaseScratch frees the kept vision scratch and the next request builds a new one", async () => {
  const pooled = await modelWith(2 ** 30);
  // One tile (img1): what is checked is the freeing and the rebuild, which the tile count does not change.
  const img1 = await pixels("img1");
  try {
    const before = bufferTap(), after = bufferTap();
    await encode(pooled, img1, before.tap);
    assert.ok(!(await destroyed(pooled.gpu, before.buffers[0])), "a kept buffer reads as destroyed");
    pooled.releaseScratch();
    assert.equal(pooled.visionScratch.heldTiles, 0);
    assert.equal(pooled.visionScratch.heldBytes, 0);
    for (const b of before.buffers) {
      assert.ok(await destroyed(pooled.gpu, b), "a buffer outlived releaseScratch");
    }
    assertSameBits(await encode(pooled, img1, after.tap), await reference("img1", img1));
    assertOtherBuffers(after.buffers, before.buffers, "after releaseScratch");
    assert.equal(pooled.visionScratch.allocations, 2);
    await pooled.gpu.check("encoding after releaseScratch");
  } finally {
    pooled.releaseScratch();
  }
});

Deno.test("an encodeImages call made while another records gets a scratch of its own", async () => {
  const pooled = await modelWith(2 ** 30);
  const [img2, img3] = await Promise.all(["img2", "img3"].map(pixels));
  try {
    await encode(pooled, img3); // the pool now holds a 3-tile scratch, which the outer call takes
    const outer = bufferTap(), inner = bufferTap();
    let nested: Promise<Uint32Array> | null = null;
    // At the last layer the outer call has submitted its first layers: had the inner one been lent the
    // same scratch, it would overwrite the residual stream those layers left.
    const last = pooled.dims.vision.layers - 1;
    assert.ok(last >= 1, "the fixture needs two ViT layers for this test");
    const tap: Tap = (name, layer, t, r) => {
      outer.tap(name, layer, t, r);
      if (name === "vit.layer" && layer === last && !nested) nested = encode(pooled, img2, inner.tap);
    };
    const got = await encode(pooled, img3, tap);
    assert.ok(nested, "the nested call did not run");
    assertSameBits(await nested, await reference("img2", img2), "nested call");
    assertSameBits(got, await reference("img3", img3), "outer call");
    assertOtherBuffers(inner.buffers, outer.buffers, "nested call");
    // Both came back; the pool keeps the larger (the nested call's 4 tiles).
    assert.equal(pooled.visionScratch.heldTiles, 4);
    assert.equal(pooled.visionScratch.allocations, 2);
  } finally {
    pooled.releaseScratch();
  }
});

Deno.test("INT8_MATMUL=llm-int8: fewer tiles in the kept scratch give the embeddings of a fresh one", async () => {
  // The LLM.int8 scratch (outlier flags, column lists, int8 rows) is reused too; at θ = 1 the layers have
  // outlier columns (checked below), so a stale list from the larger request would show in the result.
  const setting: Int8MatmulSetting = { mode: "llm-int8", threshold: 1 };
  const pooled = await modelWith(2 ** 30, setting), off = await modelWith(0, setting);
  // One tile after four (img1 after img2; the 3-tile img3 cost the suite four more tiles of LLM.int8 encoding).
  const [img2, img1] = await Promise.all(["img2", "img1"].map(pixels));
  const counts: Tensor[] = [];
  const tap: Tap = (name, layer, t, r) => {
    if (name !== "vit.llm_int8.fc2_outliers") return;
    const count = pooled.gpu.createTensor(`test.fc2_outliers.${layer}`, "u32", [1]);
    r.copyAfter(t, count.buffer, 4);
    counts.push(count);
  };
  try {
    await encode(pooled, img2);
    assertSameBits(await encode(pooled, img1, tap), await encode(off, img1));
    assert.equal(counts.length, pooled.dims.vision.layers);
    for (const c of counts) {
      assert.ok(new Uint32Array(await pooled.gpu.readBytes(c))[0] > 0, `${c.label}: no outlier columns`);
      c.buffer.destroy();
    }
    assert.equal(pooled.visionScratch.allocations, 1);
    assert.equal(pooled.visionScratch.heldTiles, 4);
  } finally {
    pooled.releaseScratch();
  }
});
