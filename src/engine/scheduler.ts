/**
 * One engine, one request at a time: a FIFO of tickets in front of it, bounded so an overloaded server
 * answers 503 at once instead of letting latency grow without end.
 *
 * A route takes a ticket with `reserve()` before it reads images (so a full queue costs no decoding),
 * then either `run`s its job or `release`s the ticket when the request turns out to be invalid.
 */
import { InputError } from "../errors.ts";

export interface SchedulerOptions {
  /** Tickets that may wait besides the running job (QUEUE_SIZE). */
  maxQueue: number;
}

interface Waiter {
  ticket: Ticket;
  start: () => void;
}

export class Scheduler {
  readonly maxQueue: number;
  #waiting = 0; // reserved tickets not yet running (reading bodies or queued for the engine)
  #running = false;
  #queue: Waiter[] = [];
  /** Moving average of job durations, ms, for Retry-After. */
  #avgJobMs = 1000;

  constructor(options: SchedulerOptions) {
    this.maxQueue = options.maxQueue;
  }

  /** Requests waiting plus the one running. */
  get depth(): number {
    return this.#waiting + (this.#running ? 1 : 0);
  }

  /** Seconds after which a retry has a fair chance: the expected time to drain the queue, 1..120. */
  get retryAfterSeconds(): number {
    return Math.min(120, Math.max(1, Math.ceil((this.depth * this.#avgJobMs) / 1000)));
  }

  /** Takes a place in the queue or throws a 503 InputError (code `queue_full`) when none is left. */
  reserve(): Ticket {
    // Admitted = waiting + running ≤ maxQueue + 1; a ticket still reading its body counts as waiting
    // even when the engine is idle, so the bound is on the total, not on `#waiting` alone.
    if (this.depth >= this.maxQueue + 1) {
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
    this.#running = false;
    this.#avgJobMs = 0.8 * this.#avgJobMs + 0.2 * ms;
    this.#pump();
  }

  #pump(): void {
    if (this.#running) return;
    const next = this.#queue.shift();
    if (!next) return;
    this.#waiting--;
    this.#running = true;
    next.start();
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
