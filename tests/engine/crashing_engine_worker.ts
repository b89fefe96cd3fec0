/// <reference lib="deno.worker" />
// A stand-in for src/engine/engine_worker.ts in tests/engine/worker_engine_test.ts: it loads at once, then
// fails with an uncaught error on its first chat, as a crashed engine thread would.
import type { FromEngine, ToEngine } from "../../src/engine/engine_protocol.ts";
import { noEngineStats } from "../../src/engine/types.ts";

self.onmessage = (e: MessageEvent<ToEngine>) => {
  if (e.data.type === "load") {
    const modelInfo = { id: "crashing", randomWeights: true, description: "test", maxContext: 64 };
    self.postMessage(
      { type: "loaded", modelInfo, status: { fault: null, stats: noEngineStats } } as FromEngine,
    );
  }
  if (e.data.type === "chat") throw new Error("kernel exploded");
};
