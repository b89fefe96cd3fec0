import assert from "node:assert/strict";
import {
  defaultRowHeadPrefetch,
  describeRowHeadPrefetch,
  parseRowHeadPrefetch,
  prefetchRowHeads,
  rowHeadProducts,
  type RowHeadRead,
  rowHeadsOn,
} from "../../src/ops/prefetch_row_heads.ts";
import { randomI8 } from "../../src/ref/random.ts";
import { testGpu } from "./check.ts";

Deno.test("prefetch_row_heads reads exactly the first chunks of every row", async (t) => {
  const gpu = await testGpu();
  // 101 rows of 23 chunks (K = 368): heads of 5 chunks are 505 chunks, so thread 0 of one workgroup takes
  // chunks 0 and 256 (rows 0 and 51), of two workgroups chunk 0 only; 512 bytes a row are capped at the row.
  const N = 101, K = 368;
  const bytes = randomI8(N * K, 21);
  const w = gpu.uploadTensor("w", "i8x4", [N, K], bytes);
  const words = new Uint32Array(bytes.buffer);
  const sink = gpu.createTensor("sink", "u32", [1]);
  const row16 = K / 16;
  /** Thread 0's XOR over head chunks 0, s, 2s, … (chunk i: row i / c16, chunk i % c16 of it). */
  const threadZero = (c16: number, s: number) => {
    let h = 0;
    for (let i = 0; i < N * c16; i += s) {
      const at = 4 * (Math.floor(i / c16) * row16 + i % c16);
      h ^= words[at] ^ words[at + 1] ^ words[at + 2] ^ words[at + 3];
    }
    return h >>> 0;
  };
  const cases: [RowHeadRead, number][] = [
    [{ bytesPerRow: 80, workgroups: 1 }, 5],
    [{ bytesPerRow: 80, workgroups: 2 }, 5],
    [{ bytesPerRow: 512, workgroups: 1 }, row16],
    [{ bytesPerRow: 16, workgroups: 3 }, 1],
  ];
  for (const [setting, c16] of cases) {
    await t.step(`${setting.bytesPerRow} bytes a row, ${setting.workgroups} workgroups`, async () => {
      const magic = threadZero(c16, 256 * Math.min(setting.workgroups, Math.ceil(N * c16 / 256)));
      // The kernel's compare is against its own magic; a run with thread 0's XOR as the magic stores it.
      for (const [m, want] of [[0x9e3779b9, 0], [magic, magic]]) {
        gpu.writeTensor(sink, new Uint32Array(1));
        const r = gpu.recorder("prefetch");
        prefetchRowHeads(r, w, sink, setting, m);
        r.submit();
        assert.equal((await gpu.readU32(sink))[0], want, `magic ${m}`);
      }
    });
  }
});

Deno.test("row head prefetch settings parse per product over the defaults, and reject the rest", () => {
  const all = (bytesPerRow: number, workgroups: number) =>
    Object.fromEntries(rowHeadProducts.map((p) => [p, { bytesPerRow, workgroups }]));
  assert.deepEqual(parseRowHeadPrefetch("256:132"), all(256, 132));
  assert.deepEqual(parseRowHeadPrefetch("off"), all(0, 0));
  assert.deepEqual(parseRowHeadPrefetch("off,w2=192:66"), {
    ...all(0, 0),
    w2: { bytesPerRow: 192, workgroups: 66 },
  });
  assert.deepEqual(parseRowHeadPrefetch("head=64:8,wo=off"), {
    ...defaultRowHeadPrefetch,
    head: { bytesPerRow: 64, workgroups: 8 },
    wo: { bytesPerRow: 0, workgroups: 0 },
  });
  assert.equal(
    describeRowHeadPrefetch(parseRowHeadPrefetch("off,wqkv=32:1")),
    "wqkv=32:1,wo=off,gateUp=off,w2=off,head=off",
  );
  assert.ok(!rowHeadsOn(parseRowHeadPrefetch("off")) && rowHeadsOn(parseRowHeadPrefetch("off,head=16:1")));
  for (
    const bad of [
      "",
      "256",
      "250:132",
      "256:0",
      "0:132",
      "256:70000",
      "a:b",
      "w4=256:132",
      "wo=",
      "=off",
      "wo=off,",
    ]
  ) {
    assert.throws(() => parseRowHeadPrefetch(bad), /BYTES:WORKGROUPS/, bad);
  }
});
