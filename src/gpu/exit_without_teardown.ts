/**
 * Ending a process that ran the GPU, once its own work is done in order (the server: HTTP drained, session
 * store closed, GPU device destroyed; the chat and bench scripts: output written): through libc's `_exit`,
 * which ends every thread at once and runs no exit handlers.
 *
 * Why not `Deno.exit()` or letting the process end by itself: both run libc's `exit()`, whose handlers tear
 * down the Vulkan driver's globals while another thread (the engine's, or the driver's own) may still be
 * dropping GPU objects. That race crashed processes after all their work was done: SIGSEGV in NVIDIA's
 * driver (docs/PERF.md v27) and, on Mesa's llvmpipe, "double free or corruption" or "malloc_consolidate():
 * unaligned fastbin chunk detected" and exit 134 now and then (a CI run's serve test). Nothing is left to
 * flush at that point: console output and `Deno.stdout.writeSync` are written synchronously, files were
 * awaited, and Deno KV commits each write.
 */

type LibC = Deno.DynamicLibrary<{ _exit: { parameters: ["i32"]; result: "void" } }>;

/** Where libc lives on the systems a GPU host runs: glibc Linux first, then musl and macOS. */
const libcPaths = ["libc.so.6", "libc.so", "libc.musl-x86_64.so.1", "/usr/lib/libSystem.B.dylib"];

/** libc opened ahead of time (at startup, before a shutdown needs it), or null where FFI is not allowed. */
export function openLibC(): LibC | null {
  for (const path of libcPaths) {
    try {
      return Deno.dlopen(path, { _exit: { parameters: ["i32"], result: "void" } });
    } catch (err) {
      if (err instanceof Deno.errors.NotCapable || err instanceof Deno.errors.PermissionDenied) return null;
    }
  }
  return null;
}

/** Ends the process with `code` through `_exit`; returns only where that is not available (no libc). */
export function exitWithoutTeardown(libc: LibC | null, code: number): void {
  libc?.symbols._exit(code);
}
