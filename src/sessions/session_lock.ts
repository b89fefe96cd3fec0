/**
 * Serializes the rounds of one session inside this process: round n+1 must see round n's answer in its
 * history, so concurrent rounds on one session wait for each other instead of racing. Across instances
 * the versionstamp check in SessionStore.appendTurn is the guard (the loser gets a 409).
 */
export class KeyedMutex {
  #tails = new Map<string, Promise<void>>();

  /** Runs `fn` once every earlier `run` with the same key has settled. */
  async run<T>(key: string, fn: () => Promise<T>): Promise<T> {
    const previous = this.#tails.get(key) ?? Promise.resolve();
    let release!: () => void;
    const mine = new Promise<void>((resolve) => (release = resolve));
    const tail = previous.then(() => mine);
    this.#tails.set(key, tail);
    try {
      await previous;
      return await fn();
    } finally {
      release();
      // Forget the key once nobody queued behind us, so the map does not grow with every session ever seen.
      if (this.#tails.get(key) === tail) this.#tails.delete(key);
    }
  }

  /** Keys with a holder or waiters (for tests and metrics). */
  get size(): number {
    return this.#tails.size;
  }
}
