/**
 * The iteration order of a CPython (3.8 – 3.13, 64-bit) `set` of 2-tuples of small non-negative ints,
 * built by adding the tuples in a given order. The reference `dynamic_preprocess` sorts such a set by
 * i·j with a stable sort, so ties keep this order and it decides which grid wins an aspect-ratio tie.
 *
 * Model of CPython's setobject.c (facts, not code): open addressing over a power-of-two table
 * (min 8 slots); a probe checks slot i and then up to LINEAR_PROBES = 9 following slots (only when they
 * fit before the table end), then jumps to i = (5·i + 1 + perturb) & mask with perturb >>= 5 first;
 * after an insertion, when fill·5 ≥ mask·3 the table is rebuilt to the smallest power of two > 4·used
 * by re-inserting the entries in slot order. Iteration walks the slots in order.
 * Hashes: hash(n) = n for small ints; tuples use the xxHash-based tuplehash introduced in 3.8.
 */

const MASK64 = (1n << 64n) - 1n;
const XXPRIME_1 = 11400714785074694791n;
const XXPRIME_2 = 14029467366897019727n;
const XXPRIME_5 = 2870177450012600261n;

/** CPython ≥ 3.8 `hash((a, b))` for small non-negative ints, as an unsigned 64-bit value. */
export function tupleHash(items: readonly number[]): bigint {
  let acc = XXPRIME_5;
  for (const item of items) {
    const lane = BigInt(item); // hash(n) == n for 0 <= n < 2^61 - 1
    acc = (acc + lane * XXPRIME_2) & MASK64;
    acc = ((acc << 31n) | (acc >> 33n)) & MASK64; // rotate left 31
    acc = (acc * XXPRIME_1) & MASK64;
  }
  acc = (acc + (BigInt(items.length) ^ (XXPRIME_5 ^ 3527539n))) & MASK64;
  // -1 is reserved for errors in CPython and replaced by this constant.
  return acc === MASK64 ? 1546275796n : acc;
}

const LINEAR_PROBES = 9;
const PERTURB_SHIFT = 5n;
const MIN_SIZE = 8;

interface Slot {
  key: string;
  hash: bigint;
  value: [number, number];
}

/** Slot index where a key not yet present lands (CPython's probe sequence). */
function findFreeSlot(table: (Slot | null)[], hash: bigint, key: string | null): number {
  const mask = table.length - 1;
  let perturb = hash;
  let i = Number(hash & BigInt(mask));
  while (true) {
    const probes = i + LINEAR_PROBES <= mask ? LINEAR_PROBES : 0;
    for (let j = i; j <= i + probes; j++) {
      const slot = table[j];
      if (slot === null) return j;
      if (key !== null && slot.hash === hash && slot.key === key) return -1; // already present
    }
    perturb >>= PERTURB_SHIFT;
    i = Number((BigInt(i) * 5n + 1n + perturb) & BigInt(mask));
  }
}

/**
 * The order in which CPython iterates `set(pairs)` when the pairs are added in the given order
 * (duplicates allowed; later duplicates are ignored like `set.add`).
 */
export function cpythonSetOrder(pairs: Iterable<readonly [number, number]>): [number, number][] {
  let table: (Slot | null)[] = new Array(MIN_SIZE).fill(null);
  let used = 0;
  for (const [a, b] of pairs) {
    if (!Number.isInteger(a) || !Number.isInteger(b) || a < 0 || b < 0) {
      throw new RangeError(`Only tuples of non-negative ints are modelled, got (${a}, ${b})`);
    }
    const key = `${a},${b}`;
    const hash = tupleHash([a, b]);
    const at = findFreeSlot(table, hash, key);
    if (at < 0) continue;
    table[at] = { key, hash, value: [a, b] };
    used++; // no deletions, so fill == used
    const mask = table.length - 1;
    if (used * 5 >= mask * 3) {
      let size = MIN_SIZE;
      const minUsed = used > 50000 ? used * 2 : used * 4;
      while (size <= minUsed) size *= 2;
      const old = table;
      table = new Array(size).fill(null);
      for (const slot of old) if (slot) table[findFreeSlot(table, slot.hash, null)] = slot;
    }
  }
  return table.filter((s): s is Slot => s !== null).map((s) => s.value);
}
