import assert from "node:assert/strict";
import { decodeImage } from "../../src/image/decode_image.ts";
import { InputError } from "../../src/errors.ts";
import { ImageWorkers } from "../../src/image/image_workers.ts";
import { rng } from "../../src/ref/random.ts";

const fixtureDirs = ["../fixtures/jpeg/", "../fixtures/jpeg_djpeg/"].map((d) => new URL(d, import.meta.url));
const jpegs = fixtureDirs.flatMap((dir) =>
  [...Deno.readDirSync(dir)].filter((e) => e.name.endsWith(".jpg")).sort((a, b) =>
    a.name.localeCompare(b.name)
  )
    .map((e) => ({ name: e.name, bytes: Deno.readFileSync(new URL(e.name, dir)) }))
);

/** A copy of `src` with bits flipped, cut short, or bytes overwritten (in the headers or anywhere). */
function mangle(src: Uint8Array, r: () => number): { bytes: Uint8Array; how: string } {
  const b = src.slice();
  const at = (n: number) => Math.floor(r() * n);
  switch (at(4)) {
    case 0: {
      const flips = 1 + at(8);
      for (let i = 0; i < flips; i++) b[at(b.length)] ^= 1 << at(8);
      return { bytes: b, how: `${flips} bits flipped` };
    }
    case 1: {
      const n = at(b.length);
      return { bytes: b.subarray(0, n), how: `cut to ${n} bytes` };
    }
    case 2: {
      const i = at(b.length);
      b[i] = at(256);
      return { bytes: b, how: `byte ${i} overwritten` };
    }
    default: {
      const i = 2 + at(Math.min(600, b.length - 2)); // marker segments: tables, frame, scan headers
      for (let k = 0; k < 4 && i + k < b.length; k++) b[i + k] = at(256);
      return { bytes: b, how: `header bytes ${i}… overwritten` };
    }
  }
}

// A server decodes whatever a client sends: a mangled file must give an image or a 4xx InputError, never
// another exception (a 500) or a hang. Seeded, so a failure names a case that can be replayed.
Deno.test("decodeImage answers every mangled JPEG with an image or an InputError, on one thread and on workers", async (t) => {
  const workers = new ImageWorkers(2);
  try {
    for (const [label, pool] of [["one thread", undefined], ["2 workers", workers]] as const) {
      await t.step(label, async () => {
        const r = rng(label.length * 7919);
        const outcomes: Record<string, number> = {};
        for (let i = 0; i < 250; i++) {
          const src = jpegs[Math.floor(r() * jpegs.length)];
          const { bytes, how } = mangle(src.bytes, r);
          try {
            const img = await decodeImage(bytes, { maxPixels: 50_000_000 }, pool);
            assert.equal(img.data.length, img.width * img.height * 3);
            outcomes.image = (outcomes.image ?? 0) + 1;
          } catch (e) {
            if (!(e instanceof InputError)) {
              throw new Error(`case ${i}: ${src.name}, ${how}: ${(e as Error)?.stack ?? e}`);
            }
            outcomes[e.code ?? "input_error"] = (outcomes[e.code ?? "input_error"] ?? 0) + 1;
          }
        }
        // Both kinds of outcome happen, so the mutations neither always break nor never touch the data.
        assert.ok((outcomes.image ?? 0) > 20 && (outcomes.invalid_image ?? 0) > 20, JSON.stringify(outcomes));
        // Hostile input throws inside the workers' jobs: it must never kill a worker.
        if (pool) assert.equal(pool.spawned, 2, "no worker died");
      });
    }
  } finally {
    workers.close();
  }
});
