import assert from "node:assert/strict";
import { defaultStepsPerReadback } from "../../src/engine/generate.ts";
import { warmGenerationTokens, warmUpEngine } from "../../src/engine/warm_up.ts";
import { tinyModel } from "../model/tiny_fixture.ts";

Deno.test("warmUpEngine runs the model's warm-up, then a generation through generate()'s readback loop", async () => {
  // The generation is the point (the first streamed answer of a process started late without it, PERF.md
  // v74), so it is counted where it shows: submitted steps and mapped readbacks, the model's own warm-up
  // stood in for by a counter.
  const model = await tinyModel();
  const queue = model.gpu.device.queue;
  const submit = queue.submit, mapAsync = GPUBuffer.prototype.mapAsync, warmUp = model.warmUp;
  let submits = 0, maps = 0, warmUps = 0;
  queue.submit = (buffers: Iterable<GPUCommandBuffer>) => (submits++, submit.call(queue, buffers));
  GPUBuffer.prototype.mapAsync = function (this: GPUBuffer, ...args: Parameters<GPUBuffer["mapAsync"]>) {
    maps++;
    return mapAsync.apply(this, args);
  };
  model.warmUp = () => (warmUps++, Promise.resolve());
  try {
    await warmUpEngine(model);
  } finally {
    queue.submit = submit;
    GPUBuffer.prototype.mapAsync = mapAsync;
    model.warmUp = warmUp;
  }
  assert.equal(warmUps, 1, "the model's warm-up ran once");
  assert.ok(submits >= warmGenerationTokens, `${submits} submits for ${warmGenerationTokens} tokens`);
  // The prompt's readback, then one a group of steps.
  const readbacks = 1 + warmGenerationTokens / defaultStepsPerReadback;
  assert.ok(maps >= readbacks, `${maps} readbacks mapped, want ≥ ${readbacks}`);
});
