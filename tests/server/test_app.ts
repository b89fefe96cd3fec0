/** An app on the fake engine and an in-memory KV, for route tests. */
import type { Hono } from "hono";
import type { Scheduler } from "../../src/engine/scheduler.ts";
import type { ChatEngine } from "../../src/engine/types.ts";
import { createApp } from "../../src/server/app.ts";
import { Metrics } from "../../src/server/metrics.ts";
import { defaultSettings, type Settings } from "../../src/server/settings.ts";
import { SessionStore } from "../../src/sessions/session_store.ts";
import { FakeEngine } from "./fake_engine.ts";

export interface TestApp {
  app: Hono;
  engine: FakeEngine;
  sessions: SessionStore;
  settings: Settings;
  metrics: Metrics;
  close(): void;
}

export async function makeTestApp(
  options: {
    settings?: Partial<Settings>;
    engine?: FakeEngine;
    loading?: Promise<ChatEngine>;
    kvPath?: string;
    scheduler?: Scheduler;
  } = {},
): Promise<TestApp> {
  const settings = defaultSettings({ queueSize: 64, ...options.settings });
  const sessions = await SessionStore.open(options.kvPath ?? ":memory:", {
    ttlSeconds: settings.sessionTtlSeconds,
  });
  const engine = options.engine ?? new FakeEngine();
  const metrics = new Metrics();
  const app = createApp({
    engine: options.loading ?? engine,
    sessions,
    settings,
    metrics,
    scheduler: options.scheduler,
  });
  return { app, engine, sessions, settings, metrics, close: () => sessions.close() };
}

export const PNG_PATH = "tests/fixtures/tiny-internvl/goldens/images/square_rgba.png";
export const JPEG_PATH = "tests/fixtures/tiny-internvl/goldens/images/tall.jpg";

export function toBase64(bytes: Uint8Array): string {
  let binary = "";
  for (let i = 0; i < bytes.length; i += 0x8000) {
    binary += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  }
  return btoa(binary);
}

export function dataUrl(bytes: Uint8Array, mime = "image/png"): string {
  return `data:${mime};base64,${toBase64(bytes)}`;
}

/** A PNG signature and IHDR declaring width×height, with no pixel data: enough for header checks. */
export function pngHeaderOnly(width: number, height: number): Uint8Array {
  const bytes = new Uint8Array(33);
  bytes.set([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0, 0, 0, 13, 0x49, 0x48, 0x44, 0x52]);
  const view = new DataView(bytes.buffer);
  view.setUint32(16, width);
  view.setUint32(20, height);
  bytes.set([8, 2, 0, 0, 0], 24);
  return bytes;
}

export function postJson(app: Hono, path: string, body: unknown, headers: Record<string, string> = {}) {
  return app.request(path, {
    method: "POST",
    headers: { "content-type": "application/json", ...headers },
    body: typeof body === "string" ? body : JSON.stringify(body),
  });
}

/** Parses an SSE body into {event, data} records. */
export async function readSse(res: Response): Promise<{ event: string | null; data: string }[]> {
  const text = await res.text();
  return text.split("\n\n").filter((block) => block.trim() !== "").map((block) => {
    let event: string | null = null;
    const data: string[] = [];
    for (const line of block.split("\n")) {
      if (line.startsWith("event: ")) event = line.slice(7);
      if (line.startsWith("data: ")) data.push(line.slice(6));
    }
    return { event, data: data.join("\n") };
  });
}
