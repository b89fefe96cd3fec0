import { vitEmbeddings } from "../../src/ops/vit_embeddings.ts";
import { vitEmbeddingsRef } from "../../src/ref/vit_embeddings.ts";
import { randomF32 } from "../../src/ref/random.ts";
import { assertClose, testGpu } from "./check.ts";
import { tolerance } from "./tolerances.ts";

Deno.test("vitEmbeddings prepends CLS and adds position embeddings", async (t) => {
  const gpu = await testGpu();
  for (const [N, P, D] of [[1, 1, 1], [2, 4, 7], [3, 9, 33], [1, 1024, 5]]) {
    await t.step(`N=${N} P=${P} D=${D}`, async () => {
      const seed = N + P * 3 + D * 11;
      const patches = randomF32(N * P * D, seed);
      const cls = randomF32(D, seed + 1);
      const pos = randomF32((P + 1) * D, seed + 2);
      const out = gpu.createTensor("out", "f32", [N, P + 1, D]);
      const r = gpu.recorder("test");
      vitEmbeddings(
        r,
        gpu.uploadTensor("patches", "f32", [N, P, D], patches),
        gpu.uploadTensor("cls", "f32", [D], cls),
        gpu.uploadTensor("pos", "f32", [P + 1, D], pos),
        out,
      );
      r.submit();
      const tol = tolerance.elementwise;
      assertClose(await gpu.readF32(out), vitEmbeddingsRef(patches, cls, pos, N, P, D), tol.atol, tol.rtol);
    });
  }
});
