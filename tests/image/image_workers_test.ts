import assert from "node:assert/strict";
import { bicubicResize } from "../../src/image/bicubic_resize.ts";
import { decodeImage } from "../../src/image/decode_image.ts";
import { preprocessImage } from "../../src/image/pixel_values.ts";
import { ImageWorkers } from "../../src/image/image_workers.ts";
import type { RgbImage } from "../../src/image/rgb_image.ts";
import { manifestImages, patterned, readGolden, sha256Hex } from "./image_test_util.ts";

/** A plain (non-shared) copy, so comparisons and hashes see ordinary bytes. */
const bytes = (img: RgbImage) => img.data.slice();

/** Equal bytes, or a failure naming the first difference (a multi-megabyte diff would take minutes). */
function assertSameBytes(got: ArrayLike<number>, want: ArrayLike<number>, what = "bytes"): void {
  assert.equal(got.length, want.length, `${what}: length`);
  let i = 0;
  while (i < got.length && got[i] === want[i]) i++;
  assert.ok(i === got.length, `${what} differ first at ${i}: ${got[i]} ≠ ${want[i]}`);
}

Deno.test("ImageWorkers gives bicubicResize's bytes at odd sizes, with 1 and 3 workers", async (t) => {
  // [source w, h] → [target w, h]: downscale both ways past the band minimum, the grid and the thumbnail
  // of a 3:2 photo, an upscale, width only, height only, fewer rows than one band.
  const cases: [number, number, number, number][] = [
    [1537, 1029, 1344, 896],
    [1537, 1029, 448, 448],
    [97, 61, 448, 896],
    [301, 203, 150, 203],
    [301, 203, 301, 77],
    [50, 20, 13, 7],
  ];
  for (const workers of [1, 3]) {
    const pool = new ImageWorkers(workers);
    try {
      for (const [w, h, ow, oh] of cases) {
        await t.step(`${workers} workers: ${w}×${h} → ${ow}×${oh}`, async () => {
          const src = patterned(w, h, w * 31 + h + ow);
          const got = await pool.resize(src, ow, oh);
          assert.deepEqual([got.width, got.height], [ow, oh]);
          assertSameBytes(got.data, bicubicResize(src, ow, oh).data);
        });
      }
      await t.step(`${workers} workers: same size is a copy`, async () => {
        const src = patterned(40, 30, 5);
        const got = await pool.resize(src, 40, 30);
        assertSameBytes(got.data, src.data);
        assert.notEqual(got.data.buffer, src.data.buffer);
      });
    } finally {
      pool.close();
    }
  }
});

Deno.test("ImageWorkers runs several resizes at once, each byte-exact", async () => {
  const pool = new ImageWorkers(2);
  try {
    const srcs = [patterned(640, 480, 1), patterned(333, 999, 2), patterned(1000, 100, 3)];
    const targets: [number, number][] = [[448, 448], [896, 1344], [1344, 448]];
    const got = await Promise.all(srcs.flatMap((s) => targets.map(([w, h]) => pool.resize(s, w, h))));
    let i = 0;
    for (const s of srcs) {
      for (const [w, h] of targets) assertSameBytes(got[i++].data, bicubicResize(s, w, h).data);
    }
  } finally {
    pool.close();
  }
});

Deno.test("ImageWorkers matches Pillow BICUBIC on the fixture images", async (t) => {
  const pool = new ImageWorkers(3);
  try {
    for (const [key, rec] of Object.entries(await manifestImages())) {
      const [w, h] = rec.resized_size;
      await t.step(`${key}: ${rec.orig_size.join("×")} → ${w}×${h}`, async () => {
        const file = rec.format === "JPEG" ? rec.decoded_rgb_png! : rec.file;
        const src = await decodeImage(await readGolden(file), { maxPixels: 50_000_000 });
        const out = await pool.resize(src, w, h);
        assert.equal(await sha256Hex(bytes(out)), rec.resized_rgb_sha256);
      });
    }
  } finally {
    pool.close();
  }
});

Deno.test("preprocessImage through a ImageWorkers gives the same pixel values and grid", async (t) => {
  const pool = new ImageWorkers(2);
  try {
    for (const [key, rec] of Object.entries(await manifestImages())) {
      await t.step(key, async () => {
        const file = await readGolden(rec.file);
        const options = { maxNum: 6, maxPixels: 50_000_000 };
        const want = await preprocessImage(file, options);
        const got = await preprocessImage(file, options, pool);
        assert.deepEqual([got.grid, got.tiles], [want.grid, want.tiles]);
        assertSameBytes(got.pixelValues, want.pixelValues, "pixel values");
      });
    }
  } finally {
    pool.close();
  }
});

Deno.test("a closed ImageWorkers refuses work; a pool needs a worker", async () => {
  const pool = new ImageWorkers(1);
  pool.close();
  await assert.rejects(() => pool.resize(patterned(64, 64, 9), 32, 32), /ImageWorkers is closed/);
  assert.throws(() => new ImageWorkers(0), /ImageWorkers needs ≥ 1 worker, got 0/);
});

/** Runs `body` as a script in a child Deno (importing ImageWorkers and newRgbImage); its exit code and stdout. */
async function runScript(body: string): Promise<{ code: number; stdout: string; stderr: string }> {
  const dir = await Deno.makeTempDir();
  const script = `${dir}/script.ts`;
  const pool = new URL("../../src/image/image_workers.ts", import.meta.url).href;
  const rgb = new URL("../../src/image/rgb_image.ts", import.meta.url).href;
  await Deno.writeTextFile(
    script,
    `import { ImageWorkers } from "${pool}";\nimport { newRgbImage } from "${rgb}";\n${body}\n`,
  );
  try {
    const child = new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", "--config", new URL("../../deno.json", import.meta.url).pathname, script],
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const timer = setTimeout(() => child.kill("SIGKILL"), 30_000);
    const { code, stdout, stderr } = await child.output();
    clearTimeout(timer);
    const text = (b: Uint8Array) => new TextDecoder().decode(b);
    return { code, stdout: text(stdout), stderr: text(stderr) };
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("a script that never closes its ImageWorkers still gets its resize and exits", async () => {
  // Idle workers are unref'd: with them ref'd this script hung until the 30 s kill.
  const r = await runScript(
    `const out = await new ImageWorkers(2).resize(newRgbImage(1500, 1000), 448, 448);\n` +
      `console.log("resized", out.width, out.height);`,
  );
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /resized 448 448/);
});

Deno.test("workers whose module does not load fail every job and are not started again", async () => {
  const dir = await Deno.makeTempDir();
  const module = new URL(`file://${dir}/broken_worker.ts`);
  await Deno.writeTextFile(module, `throw new Error("this worker cannot start");\n`);
  const pool = new ImageWorkers(2, { workerModule: module });
  try {
    for (let i = 0; i < 3; i++) {
      await assert.rejects(
        () => pool.resize(patterned(64, 64, i), 32, 32),
        /image worker failed: .*cannot start/,
      );
    }
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(pool.spawned, 2, "no respawn loop after a startup failure");
  } finally {
    pool.close();
    await Deno.remove(dir, { recursive: true });
  }
});
