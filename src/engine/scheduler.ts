/**
 * A FIFO of tickets in front of the engine, bounded so an overloaded server answers 503 at once instead of
 * letting latency grow without end. Up to `maxRunning` requests are in the engine at once (MAX_BATCH: it
 * generates the chat rounds that wait for the GPU together as one batch, the rest one after another).
 *
 * A route takes a ticket with `reserve()` before it reads images (so a full queue costs no decoding),
 * then either `run`s its job or `release`s the ticket when the request turns out to be invalid.
 */
import { InputError } from "../errors.ts";

export interface SchedulerOptions {
  /** Tickets that may wait besides the running jobs (QUEUE_SIZE). */
  maxQueue: number;
  /** Jobs handed to the engine at once (MAX_BATCH); default 1. */
  maxRunning?: number;
}

interface Waiter {
  ticket: Ticket;
  start: () => void;
}

export class Scheduler {
  readonly maxQueue: number;
  readonly maxRunning: number;
  #waiting = 0; // reserved tickets not yet running (reading bodies or queued for the engine)
  #running = 0;
  #queue: Waiter[] = [];
  /** Moving average of job durations, ms, for Retry-After. */
  #avgJobMs = 1000;

  constructor(options: SchedulerOptions) {
    this.maxQueue = options.maxQueue;
    this.maxRunning = options.maxRunning ?? 1;
  }

  /** Requests waiting plus those running. */
  get depth(): number {
    return this.#waiting + this.#running;
  }

  /** Seconds after which a retry has a fair chance: the expected time to drain the queue, 1..120. */
  get retryAfterSeconds(): number {
    return Math.min(120, Math.max(1, Math.ceil((this.depth * this.#avgJobMs) / 1000)));
  }

  /** Takes a place in the queue or throws a 503 InputError (code `queue_full`) when none is left. */
  reserve(): Ticket {
    // Admitted = waiting + running ≤ maxQueue + maxRunning; a ticket still reading its body counts as
    // waiting even when the engine is idle, so the bound is on the total, not on `#waiting` alone.
    if (this.depth >= this.maxQueue + this.maxRunning) {
      const err = new InputError(
        `The server is busy: ${this.#waiting} requests are already waiting (QUEUE_SIZE=${this.maxQueue}); ` +
          `retry after ${this.retryAfterSeconds} s`,
        { status: 503, code: "queue_full" },
      );
      // Read by the HTTP error handler for the Retry-After header.
      throw Object.assign(err, { retryAfterSeconds: this.retryAfterSeconds });
    }
    this.#waiting++;
    return new Ticket(this);
  }

  /** @internal Ticket → scheduler. */
  enqueue(ticket: Ticket, start: () => void): void {
    this.#queue.push({ ticket, start });
    this.#pump();
  }

  /** @internal A ticket left the queue without running (released, or aborted while waiting). */
  leave(ticket: Ticket): void {
    const index = this.#queue.findIndex((w) => w.ticket === ticket);
    if (index >= 0) this.#queue.splice(index, 1);
    this.#waiting--;
  }

  /** @internal The running job finished. */
  finish(ms: number): void {
    this.#running--;
    this.#avgJobMs = 0.8 * this.#avgJobMs + 0.2 * ms;
    this.#pump();
  }

  #pump(): void {
    while (this.#running < this.maxRunning) {
      const next = this.#queue.shift();
      if (!next) return;
      this.#waiting--;
      this.#running++;
      next.start();
    }
  }
}

export class Ticket {
  #state: "reserved" | "queued" | "done" = "reserved";
  constructor(readonly scheduler: Scheduler) {}

  /** Frees the place without running (the request failed validation). Idempotent. */
  release(): void {
    if (this.#state !== "reserved") return;
    this.#state = "done";
    this.scheduler.leave(this);
  }

  /**
   * Waits for the engine, then runs `job`. An abort while waiting leaves the queue and rejects with the
   * signal's reason; an abort while running is the job's to honour (the engine stops at the next token).
   */
  run<T>(job: () => Promise<T>, signal?: AbortSignal): Promise<T> {
    if (this.#state !== "reserved") throw new Error("A ticket runs at most once");
    this.#state = "queued";
    return new Promise<T>((resolve, reject) => {
      const onAbort = () => {
        this.#state = "done";
        this.scheduler.leave(this);
        reject(signal!.reason);
      };
      if (signal?.aborted) return onAbort();
      signal?.addEventListener("abort", onAbort, { once: true });
      this.scheduler.enqueue(this, () => {
        signal?.removeEventListener("abort", onAbort);
        this.#state = "done";
        const started = performance.now();
        Promise.resolve().then(job).then(resolve, reject).finally(() =>
          this.scheduler.finish(performance.now() - started)
        );
      });
    });
  }
}
