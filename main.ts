/** `deno task serve`: settings from env (README "Configuration"), then the HTTP server. */
import { loadEngine } from "./src/engine/load_engine.ts";
import { startServer } from "./src/server/serve.ts";
import { loadSettings } from "./src/server/settings.ts";

if (import.meta.main) {
  let settings;
  try {
    settings = loadSettings(Deno.env.toObject());
  } catch (err) {
    console.error((err as Error).message);
    Deno.exit(2);
  }
  const running = await startServer(settings, loadEngine);
  for (const signal of ["SIGINT", "SIGTERM"] as const) {
    Deno.addSignalListener(signal, () => {
      console.log(`${signal}: finishing open requests, then exiting`);
      running.close().then(() => Deno.exit(0));
    });
  }
}
