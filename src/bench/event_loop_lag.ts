/**
 * How long this thread's event loop was unavailable: a timer due every `periodMs` records how late each
 * firing came. Deno's `mapAsync` blocks the thread that calls it until the GPU queue is empty (docs/PERF.md
 * v26), which shows here as firings late by up to the work queued at each readback.
 */
import { quantile, round2 } from "./util.ts";

export interface EventLoopLag {
  /** Firings seen. */
  ticks: number;
  /** Delay past the period, ms: median, 99th percentile, worst. */
  p50_ms: number;
  p99_ms: number;
  max_ms: number;
  /** Sum of the delays over 5 ms: time a request arriving then would have waited, ms. */
  blocked_ms: number;
}

export function startLagProbe(periodMs = 1): () => EventLoopLag {
  const late: number[] = [];
  let last = performance.now();
  const timer = setInterval(() => {
    const now = performance.now();
    late.push(Math.max(0, now - last - periodMs));
    last = now;
  }, periodMs);
  return () => {
    clearInterval(timer);
    return {
      ticks: late.length,
      p50_ms: round2(quantile(late, 0.5)),
      p99_ms: round2(quantile(late, 0.99)),
      max_ms: round2(quantile(late, 1)),
      blocked_ms: round2(late.filter((x) => x > 5).reduce((a, b) => a + b, 0)),
    };
  };
}
