import assert from "node:assert/strict";
import { InputError } from "../../src/errors.ts";
import { decodeImage } from "../../src/image/decode_image.ts";
import { ImageWorkers } from "../../src/image/image_workers.ts";
import { allocateCoefficients, decodeCoefficients } from "../../src/image/jpeg_entropy.ts";
import { decodeJpegRgb, JpegUnsupported } from "../../src/image/jpeg_decoder.ts";
import { MAX_SCANS, readJpegStructure } from "../../src/image/jpeg_markers.ts";
import { reconstructRows } from "../../src/image/jpeg_reconstruct.ts";
import { readGolden } from "./image_test_util.ts";

const LIMIT = { maxPixels: 50_000_000 };
const JPEG_FIXTURES = new URL("../fixtures/jpeg/", import.meta.url);

interface JpegCase {
  size: [number, number];
  mode: string;
  skipped?: string;
}

/** tests/fixtures/jpeg: `<name>.jpg` and `<name>.rgb`, Pillow's convert('RGB') of it (scripts/make_jpeg_fixtures.py). */
async function jpegFixtures(): Promise<
  { name: string; jpg: Uint8Array; rgb: Uint8Array; size: [number, number] }[]
> {
  const manifest = JSON.parse(await Deno.readTextFile(new URL("manifest.json", JPEG_FIXTURES)));
  const cases = Object.entries(manifest.cases as Record<string, JpegCase>).filter(([, c]) => !c.skipped);
  return await Promise.all(cases.map(async ([name, c]) => ({
    name,
    jpg: await Deno.readFile(new URL(`${name}.jpg`, JPEG_FIXTURES)),
    rgb: await Deno.readFile(new URL(`${name}.rgb`, JPEG_FIXTURES)),
    size: c.size,
  })));
}

const DJPEG_FIXTURES = new URL("../fixtures/jpeg_djpeg/", import.meta.url);

/**
 * tests/fixtures/jpeg_djpeg: `<name>.jpg` with sampling layouts Pillow cannot write, and `<name>.ppm`,
 * libjpeg-turbo 2.1.5's djpeg decode on its defaults (scripts/make_jpeg_djpeg_fixtures.sh).
 */
async function djpegFixtures(): Promise<
  { name: string; jpg: Uint8Array; rgb: Uint8Array; size: [number, number] }[]
> {
  const names: string[] = [];
  for await (const e of Deno.readDir(DJPEG_FIXTURES)) {
    if (e.name.endsWith(".jpg")) names.push(e.name.slice(0, -4));
  }
  return await Promise.all(
    names.sort().map(async (name) => {
      const ppm = await Deno.readFile(new URL(`${name}.ppm`, DJPEG_FIXTURES));
      // Binary PPM: "P6\n<w> <h>\n255\n" then [h, w, 3] u8.
      const [magic, w, h, max] = new TextDecoder().decode(ppm.subarray(0, 32)).split(/\s+/);
      assert.equal(magic, "P6");
      assert.equal(max, "255");
      const rgb = ppm.subarray(ppm.length - +w * +h * 3);
      return { name, jpg: await Deno.readFile(new URL(`${name}.jpg`, DJPEG_FIXTURES)), rgb, size: [+w, +h] };
    }),
  );
}

/** Equal bytes, or a failure naming the first difference (a multi-megabyte diff would take minutes). */
function assertSameBytes(got: ArrayLike<number>, want: ArrayLike<number>, what: string): void {
  assert.equal(got.length, want.length, `${what}: length`);
  let i = 0;
  while (i < got.length && got[i] === want[i]) i++;
  assert.ok(i === got.length, `${what} differ first at byte ${i}: ${got[i]} ≠ ${want[i]}`);
}

Deno.test("decodeJpegRgb reproduces Pillow's (libjpeg-turbo's) RGB of every JPEG fixture bit for bit", async (t) => {
  const fixtures = await jpegFixtures();
  assert.ok(
    fixtures.length >= 12,
    `expected the 12 fixtures of scripts/make_jpeg_fixtures.py, found ${fixtures.length}`,
  );
  for (const f of fixtures) {
    await t.step(f.name, () => {
      const img = decodeJpegRgb(f.jpg);
      assert.deepEqual([img.width, img.height], f.size);
      assertSameBytes(img.data, f.rgb, f.name);
    });
  }
});

Deno.test("decodeJpegRgb reproduces libjpeg-turbo's djpeg on h1v2, 4:1:1, 4×2, 3×1, narrow chroma, RGB and progressive restarts", async (t) => {
  const fixtures = await djpegFixtures();
  assert.ok(
    fixtures.length >= 13,
    `expected the 13 fixtures of make_jpeg_djpeg_fixtures.sh, found ${fixtures.length}`,
  );
  for (const f of fixtures) {
    await t.step(f.name, () => {
      const img = decodeJpegRgb(f.jpg);
      assert.deepEqual([img.width, img.height], f.size);
      assertSameBytes(img.data, f.rgb, f.name);
    });
  }
  await t.step("cjpeg -rgb is read as RGB (Adobe transform 0), not YCbCr", () => {
    const rgb = fixtures.find((f) => f.name.startsWith("rgb_no_transform"))!;
    assert.equal(readJpegStructure(rgb.jpg).frame.colorSpace, "rgb");
  });
});

Deno.test("a progressive JPEG that libjpeg would block-smooth goes to the imagescript fallback", async () => {
  const progressive = (await jpegFixtures()).find((f) => f.name === "q90_420_progressive_77x53")!.jpg;
  const { scans } = readJpegStructure(progressive);
  // The first scans only (DC and the first AC bands at Al > 0), then EOI: coefficient bits stay undecoded.
  const bytes = new Uint8Array(scans[2].dataEnd + 2);
  bytes.set(progressive.subarray(0, scans[2].dataEnd));
  bytes.set([0xff, 0xd9], scans[2].dataEnd);
  assert.throws(() => decodeJpegRgb(bytes), JpegUnsupported);
  const img = await decodeImage(bytes, LIMIT);
  assert.deepEqual([img.width, img.height], [77, 53]);
  const pool = new ImageWorkers(2);
  try {
    assertSameBytes((await decodeImage(bytes, LIMIT, pool)).data, img.data, "with workers");
  } finally {
    pool.close();
  }
});

Deno.test("reconstructRows gives the same bytes whatever the bands of rows", async (t) => {
  const fixtures = [...await jpegFixtures(), ...await djpegFixtures()].map((f) => ({
    name: f.name,
    jpg: f.jpg,
  }));
  fixtures.push({ name: "tall.jpg (360×720, 4:2:0)", jpg: await readGolden("images/tall.jpg") });
  for (const f of fixtures) {
    await t.step(f.name, () => {
      const { frame, scans } = readJpegStructure(f.jpg);
      const planes = allocateCoefficients(frame, false);
      decodeCoefficients(f.jpg, frame, scans, planes);
      const whole = new Uint8Array(frame.width * frame.height * 3);
      reconstructRows(frame, planes, 0, frame.height, whole);
      // Bands of 1, 2, 3, 7 and 13 rows: odd sizes put band edges inside chroma rows and block rows.
      for (const rows of [1, 2, 3, 7, 13]) {
        const banded = new Uint8Array(whole.length);
        for (let y = 0; y < frame.height; y += rows) {
          reconstructRows(frame, planes, y, Math.min(y + rows, frame.height), banded);
        }
        assertSameBytes(banded, whole, `${rows}-row bands`);
      }
    });
  }
});

Deno.test("decodeImage with ImageWorkers decodes JPEGs to the same bytes as on one thread, with 1 and 3 workers", async (t) => {
  const tall = await readGolden("images/tall.jpg");
  const one = await decodeImage(tall, LIMIT);
  const fixtures = [...await jpegFixtures(), ...await djpegFixtures()];
  for (const size of [1, 3]) {
    await t.step(`${size} worker${size > 1 ? "s" : ""}`, async () => {
      const pool = new ImageWorkers(size);
      try {
        const pooled = await decodeImage(tall, LIMIT, pool);
        assert.deepEqual([pooled.width, pooled.height], [one.width, one.height]);
        assertSameBytes(pooled.data, one.data, "images/tall.jpg");
        for (const f of fixtures) {
          assertSameBytes((await decodeImage(f.jpg, LIMIT, pool)).data, f.rgb, f.name);
        }
      } finally {
        pool.close();
      }
    });
  }
});

/** `p`, or a failure after `ms` ms: a deadlocked pool fails the test instead of hanging it. */
async function within<T>(ms: number, p: Promise<T>, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: not done after ${ms} ms (deadlock?)`)), ms);
  });
  try {
    return await Promise.race([p, late]);
  } finally {
    clearTimeout(timer);
  }
}

Deno.test("an ImageWorkers pool decodes more JPEGs at once than it has workers, queued behind resizes, without deadlock", async (t) => {
  // Band jobs block their worker until their entropy job has decoded the rows they need: were the band
  // jobs of several decodes to take every worker while an entropy job waited in the queue, none would end.
  const tall = await readGolden("images/tall.jpg");
  const want = (await decodeImage(tall, LIMIT)).data;
  const big = (await jpegFixtures()).find((f) => f.name === "q75_420_360x243")!;
  const img = await decodeImage(tall, LIMIT);
  for (const size of [1, 2, 3]) {
    await t.step(`${size} worker${size > 1 ? "s" : ""}`, async () => {
      const pool = new ImageWorkers(size);
      try {
        const runs = await within(
          20_000,
          Promise.all([
            pool.resize(img, 301, 97),
            ...Array.from(
              { length: 6 },
              (_, i) =>
                i === 3
                  ? decodeImage(big.jpg.subarray(0, big.jpg.length - 500), LIMIT, pool).catch((e) => e)
                  : decodeImage(i % 2 ? big.jpg : tall, LIMIT, pool),
            ),
            pool.resize(img, 97, 301),
          ]),
          `${size} workers`,
        );
        for (const i of [1, 3, 5]) assertSameBytes(runs[i].data, want, `decode ${i - 1}`);
        for (const i of [2, 6]) assertSameBytes(runs[i].data, big.rgb, `decode ${i - 1}`);
        assert.ok(runs[4] instanceof InputError && runs[4].code === "invalid_image", `truncated: ${runs[4]}`);
        assert.equal(pool.spawned, size, "no worker died");
      } finally {
        pool.close();
      }
    });
  }
});

Deno.test("decodeImage shares one ImageWorkers pool between concurrent JPEG decodes and resizes", async () => {
  const pool = new ImageWorkers(2);
  try {
    const tall = await readGolden("images/tall.jpg");
    const big = (await jpegFixtures()).find((f) => f.name === "q75_420_360x243")!;
    const want = (await decodeImage(tall, LIMIT)).data;
    const runs = await Promise.all([
      decodeImage(tall, LIMIT, pool),
      decodeImage(big.jpg, LIMIT, pool),
      pool.resize(await decodeImage(tall, LIMIT), 301, 97),
      decodeImage(tall, LIMIT, pool),
      decodeImage(big.jpg.subarray(0, big.jpg.length - 500), LIMIT, pool).catch((e) => e),
    ]);
    assertSameBytes(runs[0].data, want, "first tall.jpg");
    assertSameBytes(runs[1].data, big.rgb, big.name);
    assertSameBytes(runs[3].data, want, "second tall.jpg");
    assert.ok(runs[4] instanceof InputError && runs[4].code === "invalid_image", `truncated: ${runs[4]}`);
  } finally {
    pool.close();
  }
});

/** Offset of the first byte after the SOS segment (the entropy-coded data) of the first scan. */
function scanDataStart(jpg: Uint8Array): number {
  return readJpegStructure(jpg).scans[0].dataStart;
}

/** `jpg` without the marker segment `marker` (every occurrence). */
function withoutSegment(jpg: Uint8Array, marker: number): Uint8Array {
  const parts: Uint8Array[] = [jpg.subarray(0, 2)];
  let pos = 2;
  while (pos < jpg.length) {
    const m = jpg[pos + 1];
    if (m === 0xda) {
      parts.push(jpg.subarray(pos));
      break;
    }
    const end = pos + 2 + ((jpg[pos + 2] << 8) | jpg[pos + 3]);
    if (m !== marker) parts.push(jpg.subarray(pos, end));
    pos = end;
  }
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

async function assertInvalid(bytes: Uint8Array, pattern: RegExp, workers?: ImageWorkers): Promise<void> {
  const err = await decodeImage(bytes, LIMIT, workers).then(() => null, (e) => e);
  assert.ok(err instanceof InputError, `expected InputError, got ${err}`);
  assert.equal(err.status, 400);
  assert.equal(err.code, "invalid_image");
  assert.match(err.message, pattern);
}

Deno.test("decodeImage turns corrupt and truncated JPEGs into invalid_image", async (t) => {
  const fixtures = Object.fromEntries((await jpegFixtures()).map((f) => [f.name, f.jpg]));
  const baseline = await readGolden("images/tall.jpg");
  const progressive = fixtures.q90_420_progressive_77x53;
  const restart = fixtures.q90_420_restart_50x41;
  await t.step("baseline cut in the middle of its scan", async () => {
    const start = scanDataStart(baseline);
    await assertInvalid(
      baseline.subarray(0, (start + baseline.length) >> 1),
      /^JPEG image is corrupt or truncated: the image data is cut off or interrupted by a marker$/,
    );
  });
  await t.step("progressive cut in the middle of a later scan", async () => {
    const { scans } = readJpegStructure(progressive);
    const mid = scans[4].dataStart + 5;
    await assertInvalid(progressive.subarray(0, mid), /^JPEG image is corrupt or truncated: /);
  });
  await t.step("progressive cut between two scans (no EOI)", async () => {
    const { scans } = readJpegStructure(progressive);
    await assertInvalid(
      progressive.subarray(0, scans[3].dataEnd),
      /^JPEG image is corrupt or truncated: the data ends before the EOI marker$/,
    );
  });
  await t.step("restart interval cut off", async () => {
    await assertInvalid(restart.subarray(0, restart.length - 40), /^JPEG image is corrupt or truncated: /);
  });
  await t.step("Huffman data that is all one bits (no valid code)", async () => {
    const bad = baseline.slice();
    const start = scanDataStart(bad);
    // 0xFF 0x00 is a stuffed 0xFF: sixteen one bits are never a code (jdhuff.c "Corrupt JPEG data").
    for (let i = start; i + 1 < start + 200; i += 2) [bad[i], bad[i + 1]] = [0xff, 0x00];
    await assertInvalid(bad, /^JPEG image is corrupt or truncated: bad Huffman code in the image data$/);
  });
  await t.step("a restart marker out of sequence", async () => {
    const bad = restart.slice();
    let at = scanDataStart(bad);
    while (!(bad[at] === 0xff && bad[at + 1] === 0xd0)) at++;
    bad[at + 1] = 0xd3;
    await assertInvalid(
      bad,
      /^JPEG image is corrupt or truncated: restart marker RST0 is missing at byte \d+$/,
    );
  });
  await t.step("no Huffman tables (DHT removed)", async () => {
    await assertInvalid(
      withoutSegment(baseline, 0xc4),
      /^JPEG image is corrupt or truncated: scan uses Huffman table DC 0 that is not defined$/,
    );
  });
  await t.step("no quantisation tables (DQT removed)", async () => {
    await assertInvalid(
      withoutSegment(baseline, 0xdb),
      /^JPEG image is corrupt or truncated: quantisation table 0 is not defined$/,
    );
  });
  await t.step(
    "a progressive file with more scans than MAX_SCANS (each would be a pass over every block)",
    async () => {
      const { scans } = readJpegStructure(progressive);
      const last = scans[scans.length - 1];
      // Repeat the last scan (SOS header and data) until there are too many.
      let sos = last.dataStart - 2;
      while (!(progressive[sos] === 0xff && progressive[sos + 1] === 0xda)) sos--;
      const scan = progressive.subarray(sos, last.dataEnd);
      const parts = [progressive.subarray(0, last.dataEnd)];
      for (let i = scans.length; i <= MAX_SCANS; i++) parts.push(scan);
      parts.push(new Uint8Array([0xff, 0xd9]));
      const bytes = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
      parts.reduce((at, p) => (bytes.set(p, at), at + p.length), 0);
      await assertInvalid(
        bytes,
        new RegExp(`^JPEG image is corrupt or truncated: the file has more than ${MAX_SCANS} scans$`),
      );
    },
  );
  await t.step(
    "with workers too, with the same messages (the entropy decoding fails on a worker)",
    async () => {
      const ones = baseline.slice();
      const start = scanDataStart(ones);
      for (let i = start; i + 1 < start + 200; i += 2) [ones[i], ones[i + 1]] = [0xff, 0x00];
      const rst = restart.slice();
      let at = scanDataStart(rst);
      while (!(rst[at] === 0xff && rst[at + 1] === 0xd0)) at++;
      rst[at + 1] = 0xd3;
      const cases = {
        "baseline cut near its end": baseline.subarray(0, baseline.length - 100),
        "progressive cut in a later scan": progressive.subarray(
          0,
          readJpegStructure(progressive).scans[4].dataStart + 5,
        ),
        "all one bits": ones,
        "restart marker out of sequence": rst,
        "no Huffman tables": withoutSegment(baseline, 0xc4),
      };
      for (const size of [1, 2]) {
        const pool = new ImageWorkers(size);
        try {
          for (const [what, bytes] of Object.entries(cases)) {
            const alone = await decodeImage(bytes, LIMIT).then(() => null, (e) => e);
            assert.ok(alone instanceof InputError, `${what}: ${alone}`);
            await assertInvalid(bytes, new RegExp(`^${RegExp.escape(alone.message)}$`), pool);
          }
        } finally {
          pool.close();
        }
      }
    },
  );
});
