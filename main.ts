/** `deno task serve`: settings from env (README "Configuration"), then the HTTP server. */
import { loadEngine } from "./src/engine/load_engine.ts";
import { startServer } from "./src/server/serve.ts";
import { loadSettings } from "./src/server/settings.ts";
import { exitWithoutTeardown, openLibC } from "./src/gpu/exit_without_teardown.ts";

/** How long a stopped server may take to end by itself before it is made to exit. */
const exitGraceMs = 10_000;

if (import.meta.main) {
  let settings;
  try {
    settings = loadSettings(Deno.env.toObject());
  } catch (err) {
    console.error((err as Error).message);
    Deno.exit(2);
  }
  // Opened before anything runs: at shutdown the process must not depend on a load that could fail.
  const libc = openLibC();
  const starting = startServer(settings, loadEngine);
  const signals = ["SIGINT", "SIGTERM"] as const;
  let stopping = false;
  const onSignal = (signal: Deno.Signal) => {
    if (stopping) {
      console.log(`${signal} again: exiting now`);
      exitWithoutTeardown(libc, 1);
      Deno.exit(1);
    }
    stopping = true;
    console.log(`${signal}: finishing open requests, then exiting`);
    starting.then((running) => running.close()).then(() => {
      exitWithoutTeardown(libc, 0);
      // Without libc (no FFI permission) the process ends by itself: exiting at once raced the engine's
      // thread, still closing its GPU device, and crashed NVIDIA's driver (SIGSEGV; docs/PERF.md v27).
      for (const s of signals) Deno.removeSignalListener(s, handlers[s]);
      Deno.unrefTimer(setTimeout(() => {
        console.log(`still busy ${exitGraceMs / 1000} s after stopping; exiting`);
        Deno.exit(0);
      }, exitGraceMs));
    }, () => {}); // a server that failed to start has already ended the process with its error
  };
  const handlers = { SIGINT: () => onSignal("SIGINT"), SIGTERM: () => onSignal("SIGTERM") };
  // Before the server starts: a signal just after "Listening on …" was printed, before the listeners were
  // added, ended the process at once (the second-signal test in tests/server/serve_process_test.ts met it).
  for (const s of signals) Deno.addSignalListener(s, handlers[s]);
  await starting;
}
