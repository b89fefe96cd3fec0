import assert from "node:assert/strict";
import {
  clearGridChainOutputs,
  createGridChain,
  destroyGridChain,
  gridChainArrivals,
  gridChainKind,
  gridChainProductRef,
  gridChainRegion,
  type GridChainVariant,
  recordGridChain,
} from "../../src/ops/grid_chain_probe.ts";
import { assertNormalisedError, testGpu } from "./check.ts";
import { tolerance } from "./tolerances.ts";

Deno.test("grid chain probe (experiment): every product against the CPU, every mode bit for bit", async (t) => {
  const gpu = await testGpu();
  // Widths with a lane taking several chunks (K/16 = 17, 21 against 8 lanes) and one taking none (K/16 = 5
  // against 32), rounds that leave rows past N, gate·up rows in halves of a thread's slots; grids of 1 and 3
  // workgroups. llvmpipe does not hold a barrier between workgroups (with 3, workgroups left the spin early
  // and the count of arrivals fell short, without a spin giving up), so there one dispatch runs on one
  // workgroup: a row's sums do not depend on the grid, so it still matches one dispatch a product bit for bit.
  const cases: [
    { h: number; qkv: number; ff: number; layers: number },
    Omit<GridChainVariant, "sync" | "pf">,
  ][] = [
    [{ h: 272, qkv: 304, ff: 336, layers: 2 }, { R: 2, LANES: 8, U: 4, nwg: 3 }],
    [{ h: 80, qkv: 112, ff: 48, layers: 2 }, { R: 4, LANES: 32, U: 2, nwg: 1 }],
    [{ h: 272, qkv: 304, ff: 336, layers: 1 }, { R: 4, LANES: 16, U: 1, nwg: 3 }],
  ];
  for (const [shapes, tiling] of cases) {
    const name = `h=${shapes.h} qkv=${shapes.qkv} ff=${shapes.ff} ×${shapes.layers} R${tiling.R} ` +
      `L${tiling.LANES} U${tiling.U} nwg ${tiling.nwg}`;
    await t.step(name, async () => {
      const init = gpu.recorder("chain fill");
      const chain = createGridChain(gpu, init, shapes, shapes.h + tiling.R);
      init.submit();
      const run = async (sync: 0 | 1, pf: 0 | 1 | 2 | 3, dyn: 0 | 1 = 0) => {
        clearGridChainOutputs(gpu, chain);
        const v = { ...tiling, sync, pf, dyn, nwg: sync && gpu.isFallbackAdapter ? 1 : tiling.nwg };
        const r = gpu.recorder("chain");
        recordGridChain(r, chain, v, { resetFault: true });
        r.submit();
        const act = new Float32Array(await gpu.readBytes(chain.act));
        assert.equal((await gpu.readI32(chain.fault))[0], 0, "a barrier's wait gave up");
        if (sync) assert.equal((await gpu.readI32(chain.count))[0], gridChainArrivals(chain, v), "arrivals");
        return act;
      };
      const base = await run(0, 0);
      const weights = await Promise.all(
        chain.weights.map(async (w) => new Int8Array(await gpu.readBytes(w))),
      );
      for (let p = 0; p < 4 * shapes.layers; p++) {
        const [N, K] = gridChainKind(shapes, p % 4);
        const input = gridChainRegion(base, p, K);
        const want = gridChainProductRef(shapes, chain.scales, p % 4, input, weights[p % 4]);
        assertNormalisedError(
          gridChainRegion(base, p + 1, N),
          Float32Array.from(want),
          tolerance.matmul.nerr,
        );
      }
      for (
        const [sync, pf, dyn] of [[1, 0, 0], [1, 1, 0], [1, 2, 0], [1, 3, 0], [0, 0, 1], [1, 0, 1]] as const
      ) {
        const got = await run(sync, pf, dyn);
        const differ = got.findIndex((v, i) => !Object.is(v, base[i]));
        assert.equal(
          differ,
          -1,
          `SYNC ${sync} PF ${pf} DYN ${dyn}: value ${differ} differs from the static grid`,
        );
      }
      destroyGridChain(chain);
    });
  }
});
