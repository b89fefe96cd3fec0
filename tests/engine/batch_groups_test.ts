import assert from "node:assert/strict";
import { batchGroups } from "../../src/engine/webgpu_engine.ts";

Deno.test("batchGroups keeps every padded batch within the token budget, in order", () => {
  assert.deepEqual(batchGroups([10, 10, 10], 100), [[0, 1, 2]]);
  // 3 × 40 = 120 > 100: the third item starts a new batch.
  assert.deepEqual(batchGroups([40, 40, 40], 100), [[0, 1], [2]]);
  // Padding counts: [10, 60] pads to 2 × 60 = 120 > 100.
  assert.deepEqual(batchGroups([10, 60, 30], 100), [[0], [1], [2]]);
  // An item longer than the budget still runs, alone.
  assert.deepEqual(batchGroups([500, 5, 5], 100), [[0], [1, 2]]);
  assert.deepEqual(batchGroups([], 100), []);
  const lengths = Array.from({ length: 50 }, (_, i) => 1 + (i * 37) % 90);
  const groups = batchGroups(lengths, 300);
  assert.deepEqual(groups.flat(), lengths.map((_, i) => i));
  for (const g of groups) {
    if (g.length > 1) assert.ok(g.length * Math.max(...g.map((i) => lengths[i])) <= 300);
  }
});

Deno.test("batchGroups keeps a batch's longest prompt plus its longest answer within the context", () => {
  const room = (newTokens: number[]) => ({ newTokens, context: 100 });
  // 70 + 20 and 10 + 20 fit alone, and together (70 + 20 = 90); 70 + 50 = 120 does not.
  assert.deepEqual(batchGroups([70, 10], 1000, room([20, 20])), [[0, 1]]);
  assert.deepEqual(batchGroups([70, 10], 1000, room([20, 50])), [[0], [1]]);
  assert.deepEqual(batchGroups([10, 70, 10, 20], 1000, room([50, 20, 5, 5])), [[0], [1, 2, 3]]);
  // Without room only the token budget counts.
  assert.deepEqual(batchGroups([70, 10], 1000), [[0, 1]]);
});
