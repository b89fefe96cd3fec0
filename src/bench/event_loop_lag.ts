/**
 * How long this thread's event loop was unavailable: a timer due every `periodMs` records how late each
 * firing came. Deno's `mapAsync` blocks the thread that calls it until the GPU queue is empty (docs/PERF.md
 * v26), which shows here as firings late by up to the work queued at each readback.
 */
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
    const sorted = [...late].sort((a, b) => a - b);
    const at = (q: number) =>
      sorted.length ? sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] : NaN;
    const r = (x: number) => Math.round(x * 100) / 100;
    return {
      ticks: sorted.length,
      p50_ms: r(at(0.5)),
      p99_ms: r(at(0.99)),
      max_ms: r(sorted.at(-1) ?? NaN),
      blocked_ms: r(sorted.filter((x) => x > 5).reduce((a, b) => a + b, 0)),
    };
  };
}
