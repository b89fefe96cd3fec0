import assert from "node:assert/strict";
import { clamp, compareOutputs, errorColumns, passesFor, rankAgainst } from "../../src/bench/sweep.ts";

Deno.test("compareOutputs gives Σ(a−b)²/Σb² and max|a−b| over max|b|", () => {
  const ref = new Float32Array([1, -2, 2]);
  const got = new Float32Array([1, -2, 3]);
  const e = compareOutputs(got, ref);
  assert.equal(e.nerr, 1 / 9);
  assert.equal(e.maxDiffOverMax, 1 / 2);
});

Deno.test("compareOutputs is zero for identical outputs and absolute against an all-zero reference", () => {
  const same = new Float32Array([0.5, -3, 7]);
  assert.deepEqual(compareOutputs(same, same), { nerr: 0, maxDiffOverMax: 0 });
  const zeros = new Float32Array(3);
  assert.deepEqual(compareOutputs(new Float32Array([0, 2, -1]), zeros), { nerr: 5, maxDiffOverMax: 2 });
});

Deno.test("errorColumns flags MISMATCH only above the tolerance and adds max|Δ| when given", () => {
  assert.equal(errorColumns(3e-13, 1e-10), "nerr 3.0e-13");
  assert.equal(errorColumns(2e-8, 1e-8), "nerr 2.0e-8  MISMATCH");
  assert.equal(errorColumns(0, 1e-10, 0), "nerr 0.0e+0  max|Δ|/max|old| 0.0e+0");
});

Deno.test("passesFor asks for enough passes for minMs and keeps within its bounds", () => {
  assert.equal(passesFor(200, 10, 1, 5, 2000), 20);
  assert.equal(passesFor(200, 200, 1, 5, 2000), 5);
  assert.equal(passesFor(200, 1, 0.001, 5, 2000), 2000);
  assert.equal(clamp(Math.round(20 / 0.3), 1, 200), 67);
});

Deno.test("rankAgainst finds the reference and ranks the candidates within tolerance, fastest first", () => {
  const rows = [
    { kernel: "slow", nerr: 0, ms: 3 },
    { kernel: "base", nerr: 0, ms: 2 },
    { kernel: "wrong", nerr: 1, ms: 0.1 },
    { kernel: "fast", nerr: 1e-12, ms: 1 },
  ];
  const { base, ranked } = rankAgainst(rows, "base", 1e-10, (r) => r.ms);
  assert.equal(base?.kernel, "base");
  assert.deepEqual(ranked.map((r) => r.kernel), ["fast", "slow"]);
});
