/**
 * Chat sessions in Deno KV: a local SQLite file by default, or a remote KV shared by several instances.
 *
 * Layout (every value stays under KV's 64 KiB limit):
 *   ["sessions", id]                          SessionMeta (small and bounded: no per-turn entries)
 *   ["session_turns", id, turn, chunk]        UTF-8 JSON of [question, response], split in CHUNK_BYTES
 *   ["session_images", id, sha256, chunk]     image file bytes by content hash, split in CHUNK_BYTES
 *
 * A round is committed by one atomic operation that checks the meta versionstamp read before the round,
 * so two instances appending to one session cannot both win (the loser gets a 409). Turns go in that
 * atomic operation; images (possibly megabytes) are written before it, which is safe because their keys
 * are content addressed: a racing writer writes the same bytes.
 *
 * Expiry: meta carries `expiresAt` (checked on every read) and a KV expireIn; each round slides it.
 * Turn and image keys get twice the TTL and are rewritten only when they would otherwise die before the
 * meta, so a busy session rewrites its images at most once per TTL instead of every round.
 */
import type { HistoryTurn, ImageLayout } from "../engine/types.ts";
import { InputError } from "../errors.ts";
import { isSessionIdShape, newSessionId } from "./session_id.ts";
import { CHUNK_BYTES, joinChunks, sha256Hex, splitChunks } from "./kv_chunks.ts";
import { retryWhileLocked } from "./kv_busy_retry.ts";

export interface ImageRef {
  sha256: string;
  bytes: number;
  chunks: number;
}

export interface SessionMeta {
  id: string;
  createdAt: number;
  updatedAt: number;
  /** ms since epoch; a session read after this is gone. */
  expiresAt: number;
  /** Earliest expiry among this session's turn and image keys. */
  dataExpiresAt: number;
  turnCount: number;
  /** max_num of the first round: later rounds tile the same images the same way. */
  maxNum: number | null;
  /**
   * image_layout of the first round: later rounds re-render the first turn the same way. Absent in
   * sessions saved before the field existed (and before the first round); read it with `imageLayoutOf`.
   */
  imageLayout?: ImageLayout;
  imageRefs: ImageRef[];
}

/** The session's image layout; sessions saved before the field existed used "concat". */
export function imageLayoutOf(meta: SessionMeta): ImageLayout {
  return meta.imageLayout ?? "concat";
}

export interface Session {
  meta: SessionMeta;
  history: HistoryTurn[];
  /** The first round's image files, in order; empty when loaded without images. */
  images: Uint8Array[];
  /** KV versionstamp of the meta read; null for a session not yet saved. */
  versionstamp: string | null;
}

export interface SessionStoreOptions {
  ttlSeconds: number;
  /** Clock, ms since epoch; tests move it to check expiry without sleeping. */
  now?: () => number;
}

/** KV caps one atomic operation at 800 KiB of mutations. */
const ATOMIC_BYTES = 800 * 1024;
const CHUNKS_PER_ATOMIC = Math.floor(ATOMIC_BYTES / CHUNK_BYTES) - 1;

const metaKey = (id: string): Deno.KvKey => ["sessions", id];
const turnPrefix = (id: string): Deno.KvKey => ["session_turns", id];
const imagePrefix = (id: string): Deno.KvKey => ["session_images", id];

export class SessionStore {
  readonly kv: Deno.Kv;
  readonly ttlMs: number;
  readonly #now: () => number;

  constructor(kv: Deno.Kv, options: SessionStoreOptions) {
    this.kv = kv;
    this.ttlMs = options.ttlSeconds * 1000;
    this.#now = options.now ?? Date.now;
  }

  /** Opens a local KV file (path, or ":memory:") or a remote KV (http(s) URL). */
  static async open(pathOrUrl: string, options: SessionStoreOptions): Promise<SessionStore> {
    return new SessionStore(await Deno.openKv(pathOrUrl), options);
  }

  close(): void {
    this.kv.close();
  }

  /** A fresh session that exists only in memory until its first appendTurn. */
  draft(): Session {
    const now = this.#now();
    const meta: SessionMeta = {
      id: newSessionId(),
      createdAt: now,
      updatedAt: now,
      expiresAt: now + this.ttlMs,
      dataExpiresAt: now + 2 * this.ttlMs,
      turnCount: 0,
      maxNum: null,
      imageRefs: [],
    };
    return { meta, history: [], images: [], versionstamp: null };
  }

  /** Creates and saves an empty session (POST /v1/sessions). */
  async create(): Promise<Session> {
    const session = this.draft();
    const key = metaKey(session.meta.id);
    const result = await retryWhileLocked(() =>
      this.kv.atomic().check({ key, versionstamp: null }).set(key, session.meta, { expireIn: this.ttlMs })
        .commit()
    );
    if (!result.ok) throw new Error("Session id collision; the random source is broken");
    return { ...session, versionstamp: result.versionstamp };
  }

  /** The session with its history (and image bytes unless `withImages` is false), or null if unknown or expired. */
  async get(id: string, { withImages = true } = {}): Promise<Session | null> {
    if (!isSessionIdShape(id)) return null;
    const entry = await this.kv.get<SessionMeta>(metaKey(id));
    if (entry.value === null) return null;
    const meta = entry.value;
    if (meta.expiresAt <= this.#now()) {
      // KV deletes expired keys lazily; the check on read makes expiry exact.
      await this.delete(id);
      return null;
    }
    const history = await this.#readTurns(id, meta.turnCount);
    const images = withImages ? await Promise.all(meta.imageRefs.map((ref) => this.#readImage(id, ref))) : [];
    return { meta, history, images, versionstamp: entry.versionstamp };
  }

  /**
   * Saves one finished round. `firstRound` carries the images, max_num and image layout of a session's
   * first round.
   * Throws InputError 409 when the session changed since `session` was read (another instance won).
   */
  async appendTurn(
    session: Session,
    turn: HistoryTurn,
    firstRound?: { images: Uint8Array[]; maxNum: number; imageLayout?: ImageLayout },
  ): Promise<Session> {
    const old = session.meta;
    if (firstRound && old.turnCount > 0) {
      throw new Error("Images belong to the first round; the route must reject them for later rounds");
    }
    const now = this.#now();
    const dataExpireIn = 2 * this.ttlMs;
    let dataExpiresAt = old.dataExpiresAt;
    let imageRefs = old.imageRefs;
    let imageBytes = session.images;
    if (firstRound && firstRound.images.length > 0) {
      imageBytes = firstRound.images;
      imageRefs = await Promise.all(imageBytes.map((bytes) => this.#writeImage(old.id, bytes, dataExpireIn)));
      dataExpiresAt = Math.min(dataExpiresAt, now + dataExpireIn);
    }
    if (dataExpiresAt - now < this.ttlMs) {
      // The sliding meta expiry would outlive the data: rewrite it all with a fresh expiry.
      if (imageBytes.length !== imageRefs.length) {
        throw new Error("Load the session with images to refresh it");
      }
      await Promise.all(imageBytes.map((bytes) => this.#writeImage(old.id, bytes, dataExpireIn)));
      for (const [index, done] of session.history.entries()) {
        await this.#writeTurn(old.id, index, done, dataExpireIn);
      }
      dataExpiresAt = now + dataExpireIn;
    }

    const meta: SessionMeta = {
      id: old.id,
      createdAt: old.createdAt,
      updatedAt: now,
      expiresAt: now + this.ttlMs,
      dataExpiresAt,
      turnCount: old.turnCount + 1,
      maxNum: firstRound?.maxNum ?? old.maxNum,
      ...layoutField(firstRound?.imageLayout ?? old.imageLayout),
      imageRefs,
    };
    const encoded = encodeTurn(turn);
    if (encoded.length > ATOMIC_BYTES - 16 * 1024) {
      // The turn must commit atomically with the meta; one this large is a client sending a book.
      throw new InputError(
        `This round is ${encoded.length} bytes of text; a session round can hold at most ` +
          `${ATOMIC_BYTES - 16 * 1024} bytes. Send a shorter question or lower max_new_tokens`,
        {
          status: 413,
          code: "round_too_large",
        },
      );
    }
    const op = this.kv.atomic().check({ key: metaKey(old.id), versionstamp: session.versionstamp });
    splitChunks(encoded).forEach((chunk, j) => {
      op.set([...turnPrefix(old.id), old.turnCount, j], chunk, { expireIn: dataExpireIn });
    });
    op.set(metaKey(old.id), meta, { expireIn: this.ttlMs });
    const result = await retryWhileLocked(() => op.commit());
    if (!result.ok) {
      throw new InputError(
        `Session ${old.id} changed while this round ran (another request added a turn or deleted it); ` +
          `send the question again`,
        { status: 409, param: "session_id", code: "session_conflict" },
      );
    }
    return {
      meta,
      history: [...session.history, turn],
      images: imageBytes,
      versionstamp: result.versionstamp,
    };
  }

  /** Deletes a session and its data; false when it did not exist. */
  async delete(id: string): Promise<boolean> {
    if (!isSessionIdShape(id)) return false;
    const entry = await this.kv.get<SessionMeta>(metaKey(id));
    if (entry.value === null) return false;
    await retryWhileLocked(() => this.kv.delete(metaKey(id)));
    for (const prefix of [turnPrefix(id), imagePrefix(id)]) {
      for await (const item of this.kv.list({ prefix })) {
        await retryWhileLocked(() => this.kv.delete(item.key));
      }
    }
    return entry.value.expiresAt > this.#now();
  }

  async #writeImage(id: string, bytes: Uint8Array, expireIn: number): Promise<ImageRef> {
    const sha256 = await sha256Hex(bytes);
    const chunks = splitChunks(bytes);
    // Chunks go in atomic batches only to cut round trips; correctness does not depend on it.
    for (let start = 0; start < chunks.length; start += CHUNKS_PER_ATOMIC) {
      const op = this.kv.atomic();
      chunks.slice(start, start + CHUNKS_PER_ATOMIC).forEach((chunk, k) => {
        op.set([...imagePrefix(id), sha256, start + k], chunk, { expireIn });
      });
      await retryWhileLocked(() => op.commit());
    }
    return { sha256, bytes: bytes.length, chunks: chunks.length };
  }

  async #readImage(id: string, ref: ImageRef): Promise<Uint8Array> {
    const chunks: Uint8Array[] = [];
    for await (const item of this.kv.list<Uint8Array>({ prefix: [...imagePrefix(id), ref.sha256] })) {
      chunks.push(item.value);
    }
    const bytes = joinChunks(chunks);
    if (chunks.length !== ref.chunks || bytes.length !== ref.bytes) {
      throw new Error(`Session ${id} lost image ${ref.sha256} (${chunks.length}/${ref.chunks} chunks in KV)`);
    }
    return bytes;
  }

  async #writeTurn(id: string, index: number, turn: HistoryTurn, expireIn: number): Promise<void> {
    const op = this.kv.atomic();
    splitChunks(encodeTurn(turn)).forEach((chunk, j) =>
      op.set([...turnPrefix(id), index, j], chunk, { expireIn })
    );
    await retryWhileLocked(() => op.commit());
  }

  async #readTurns(id: string, turnCount: number): Promise<HistoryTurn[]> {
    const parts: Uint8Array[][] = Array.from({ length: turnCount }, () => []);
    for await (const item of this.kv.list<Uint8Array>({ prefix: turnPrefix(id) })) {
      const index = item.key[2] as number;
      // Keys past turnCount belong to a round committed after our meta read; the next read will see them.
      if (index < turnCount) parts[index].push(item.value);
    }
    return parts.map((chunks, index) => {
      if (chunks.length === 0) throw new Error(`Session ${id} lost turn ${index}`);
      return JSON.parse(new TextDecoder().decode(joinChunks(chunks))) as HistoryTurn;
    });
  }
}

/** Omitted rather than stored as undefined, so metas keep the shape older readers saw. */
function layoutField(layout: ImageLayout | undefined): { imageLayout?: ImageLayout } {
  return layout === undefined ? {} : { imageLayout: layout };
}

function encodeTurn(turn: HistoryTurn): Uint8Array {
  return new TextEncoder().encode(JSON.stringify(turn));
}
