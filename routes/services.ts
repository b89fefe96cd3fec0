/** What every route group gets from createApp (src/server/app.ts). */
import type { Scheduler } from "../src/engine/scheduler.ts";
import type { EngineSlot } from "../src/server/engine_slot.ts";
import type { Metrics } from "../src/server/metrics.ts";
import type { Settings } from "../src/server/settings.ts";
import type { KeyedMutex } from "../src/sessions/session_lock.ts";
import type { SessionStore } from "../src/sessions/session_store.ts";

export interface Services {
  engine: EngineSlot;
  sessions: SessionStore;
  settings: Settings;
  scheduler: Scheduler;
  metrics: Metrics;
  /** Per-session serialization of rounds inside this process. */
  sessionLocks: KeyedMutex;
}
