/**
 * A KV write run again while SQLite reports its file locked. Instances that share one KV file (KV_PATH) each
 * hold a connection; SQLite lets one write at a time and answers the others "database is locked" once its
 * wait runs out (seen in the suite under load: a second store on the same file, doing its own upkeep,
 * failed the first one's session create). A failed write changed nothing, so it is safe to try again, and an
 * atomic's checks are checked again; the lock lasts one transaction, so a short wait clears it.
 */
export async function retryWhileLocked<T>(
  write: () => Promise<T>,
  { attempts = 12, firstWaitMs = 5 } = {},
): Promise<T> {
  for (let attempt = 1;; attempt++) {
    try {
      return await write();
    } catch (e) {
      if (!isLocked(e) || attempt >= attempts) throw e;
      // 5, 10, 20, … ms, at most 320 ms a wait: ~2.5 s in all before giving up.
      await new Promise((r) => setTimeout(r, firstWaitMs * 2 ** Math.min(attempt - 1, 6)));
    }
  }
}

function isLocked(e: unknown): boolean {
  return e instanceof Error && /database is locked/.test(e.message);
}
