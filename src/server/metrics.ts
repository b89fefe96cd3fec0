/**
 * Prometheus text exposition (format 0.0.4) of what an operator needs to size and debug the server:
 * traffic, errors, latency to first token, decode speed, queue depth, tiles per request.
 * Hand-written: a handful of series does not justify a client library.
 */

type Labels = Record<string, string>;

function labelText(labels: Labels): string {
  const parts = Object.entries(labels).map(([k, v]) =>
    `${k}="${v.replace(/["\\\n]/g, (c) => `\\${c === "\n" ? "n" : c}`)}"`
  );
  return parts.length ? `{${parts.join(",")}}` : "";
}

class Counter {
  #values = new Map<string, { labels: Labels; value: number }>();
  constructor(readonly name: string, readonly help: string) {}
  inc(labels: Labels = {}, by = 1): void {
    const key = labelText(labels);
    const entry = this.#values.get(key) ?? { labels, value: 0 };
    entry.value += by;
    this.#values.set(key, entry);
  }
  get(labels: Labels = {}): number {
    return this.#values.get(labelText(labels))?.value ?? 0;
  }
  render(): string[] {
    const lines = [`# HELP ${this.name} ${this.help}`, `# TYPE ${this.name} counter`];
    for (const { labels, value } of this.#values.values()) {
      lines.push(`${this.name}${labelText(labels)} ${value}`);
    }
    return lines;
  }
}

class Histogram {
  #counts: number[];
  #sum = 0;
  #count = 0;
  constructor(readonly name: string, readonly help: string, readonly buckets: number[]) {
    this.#counts = buckets.map(() => 0);
  }
  observe(value: number): void {
    this.buckets.forEach((bound, i) => {
      if (value <= bound) this.#counts[i]++;
    });
    this.#sum += value;
    this.#count++;
  }
  get count(): number {
    return this.#count;
  }
  render(): string[] {
    const lines = [`# HELP ${this.name} ${this.help}`, `# TYPE ${this.name} histogram`];
    this.buckets.forEach((bound, i) => lines.push(`${this.name}_bucket{le="${bound}"} ${this.#counts[i]}`));
    lines.push(`${this.name}_bucket{le="+Inf"} ${this.#count}`);
    lines.push(`${this.name}_sum ${this.#sum}`, `${this.name}_count ${this.#count}`);
    return lines;
  }
}

export class Metrics {
  readonly requests = new Counter("internvl_http_requests_total", "HTTP requests by route and status.");
  readonly errors = new Counter(
    "internvl_http_errors_total",
    "HTTP error responses by route and error code.",
  );
  readonly timeToFirstToken = new Histogram(
    "internvl_time_to_first_token_seconds",
    "Time from request start to the first generated token.",
    [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
  );
  readonly tokensPerSecond = new Histogram(
    "internvl_decode_tokens_per_second",
    "Decode speed of each request after its first token.",
    [1, 2, 5, 10, 20, 50, 100, 200, 500],
  );
  readonly tilesPerRequest = new Histogram(
    "internvl_image_tiles_per_request",
    "448×448 tiles (thumbnail included) the vision encoder ran for one request.",
    [0, 1, 2, 4, 7, 13, 25, 41, 100],
  );
  readonly completionTokens = new Counter("internvl_completion_tokens_total", "Generated tokens.");
  readonly promptTokens = new Counter(
    "internvl_prompt_tokens_total",
    "Prompt tokens, image tokens included.",
  );

  /**
   * Sampled at render time so they are never stale (gauges, and counters kept elsewhere, e.g. the engine's);
   * set by createApp.
   */
  gauges: () => Record<string, { help: string; value: number; type?: "gauge" | "counter" }> = () => ({});

  /** One finished generation: TTFT, decode speed, tokens and tiles. */
  observeGeneration(
    g: {
      timeToFirstTokenMs: number;
      totalMs: number;
      outputTokens: number;
      promptTokens: number;
      tiles: number;
    },
  ): void {
    this.timeToFirstToken.observe(g.timeToFirstTokenMs / 1000);
    const decodeMs = g.totalMs - g.timeToFirstTokenMs;
    if (g.outputTokens > 1 && decodeMs > 0) {
      this.tokensPerSecond.observe((g.outputTokens - 1) / (decodeMs / 1000));
    }
    this.tilesPerRequest.observe(g.tiles);
    this.completionTokens.inc({}, g.outputTokens);
    this.promptTokens.inc({}, g.promptTokens);
  }

  render(): string {
    const lines: string[] = [];
    for (const metric of [this.requests, this.errors, this.completionTokens, this.promptTokens]) {
      lines.push(...metric.render());
    }
    for (const h of [this.timeToFirstToken, this.tokensPerSecond, this.tilesPerRequest]) {
      lines.push(...h.render());
    }
    for (const [name, { help, value, type }] of Object.entries(this.gauges())) {
      lines.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type ?? "gauge"}`, `${name} ${value}`);
    }
    return lines.join("\n") + "\n";
  }
}
