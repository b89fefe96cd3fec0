/**
 * Huffman (entropy) decoding of every scan into per-component coefficient planes, the serial part of a
 * JPEG decode (it runs on the calling thread; the reconstruction of src/image/jpeg_reconstruct.ts can then
 * run in bands anywhere). Mirrors libjpeg-turbo's jdhuff.c (`decode_mcu`, `jpeg_huff_decode`,
 * HUFF_EXTEND, restart handling in `process_restart`) and jdphuff.c (`decode_mcu_DC_first`,
 * `decode_mcu_AC_first`, `decode_mcu_DC_refine`, `decode_mcu_AC_refine`: EOB runs and successive
 * approximation), with the same stores: coefficients wrap to int16 (JCOEF), a run past coefficient 63 lands
 * on 63 (jpeg_natural_order's 16 spare entries).
 * DIFF: where libjpeg warns and fills with zeros (data cut off or a marker inside a scan, a bad Huffman
 * code, a wrong restart marker) this throws JpegCorrupt: Pillow raises for a truncated file anyway and
 * the server's contract is a 400 for any corrupt image.
 */
import {
  type HuffmanSpec,
  JpegCorrupt,
  type JpegFrame,
  type JpegScan,
  ZIGZAG_TO_NATURAL,
} from "./jpeg_markers.ts";

/** Per-component coefficient planes: [blockRows, blocksPerLine, 64] int16, natural order in each block. */
export type CoefficientPlanes = Int16Array[];

/** Bits of the first-level lookup: codes up to this long (most of them) decode in one table read. */
const LOOKUP_BITS = 11;

/** zigzag index → natural index, with 16 spare entries pointing at 63 for corrupt runs past the block. */
const NATURAL = new Uint8Array(80).fill(63);
NATURAL.set(ZIGZAG_TO_NATURAL);

interface HuffmanTable {
  /** lookup: [2^LOOKUP_BITS] (length << 8) | symbol for codes ≤ LOOKUP_BITS long, 0 otherwise. */
  lookup: Uint16Array;
  /**
   * acLookup: [2^LOOKUP_BITS] for AC tables, the whole (run, size, value) when code + extra bits fit:
   * (value << 8) | (run << 4) | total length (≤ LOOKUP_BITS < 16); 0 where they do not.
   */
  acLookup: Int32Array;
  /** maxCode[len]: the largest code of length len (−1 if none), len 1..16; valOffset: symbol index − code. */
  maxCode: Int32Array;
  valOffset: Int32Array;
  symbols: Uint8Array;
}

/** jdhuff.c jpeg_make_d_derived_tbl: canonical codes, plus the lookahead tables. */
function buildTable(spec: HuffmanSpec): HuffmanTable {
  const maxCode = new Int32Array(18).fill(-1), valOffset = new Int32Array(18);
  const lookup = new Uint16Array(1 << LOOKUP_BITS), acLookup = new Int32Array(1 << LOOKUP_BITS);
  let code = 0, k = 0;
  for (let len = 1; len <= 16; len++) {
    const n = spec.counts[len - 1];
    valOffset[len] = k - code;
    for (let i = 0; i < n; i++, k++, code++) {
      if (len > LOOKUP_BITS) continue;
      const sym = spec.symbols[k], shift = LOOKUP_BITS - len;
      const run = sym >> 4, size = sym & 15;
      for (let fill = 0; fill < 1 << shift; fill++) {
        const idx = (code << shift) | fill;
        lookup[idx] = (len << 8) | sym;
        if (size === 0) acLookup[idx] = (run << 4) | len;
        else if (len + size <= LOOKUP_BITS) {
          const bits = (fill >> (shift - size)) & ((1 << size) - 1);
          const value = bits < 1 << (size - 1) ? bits - (1 << size) + 1 : bits;
          acLookup[idx] = (value << 8) | (run << 4) | (len + size);
        }
      }
    }
    if (n) maxCode[len] = code - 1;
    code <<= 1;
  }
  maxCode[17] = 0x7fffffff; // sentinel: jdhuff.c's maxcode[17], ends the slow search
  return { lookup, acLookup, maxCode, valOffset, symbols: spec.symbols };
}

/**
 * The entropy-coded bit stream of one scan: a 32-bit buffer refilled a byte at a time, stuffed 0xFF 00
 * unstuffed. At a marker or the end of the data it feeds zero bytes (jdhuff.c jpeg_fill_bit_buffer) and
 * counts them, so that using any of them can be reported as truncation.
 */
class BitReader {
  acc = 0;
  /** Valid bits in acc (the low ones). */
  count = 0;
  /** Zero bytes fed past the data since the last reset. */
  padding = 0;
  constructor(readonly data: Uint8Array, public pos: number) {}

  fill(): void {
    const data = this.data;
    while (this.count <= 24) {
      let byte = 0;
      const pos = this.pos;
      if (pos < data.length) {
        byte = data[pos];
        if (byte !== 0xff) this.pos = pos + 1;
        else {
          let next = pos + 1;
          while (data[next] === 0xff) next++; // fill bytes before a marker or a stuffed zero
          if (next < data.length && data[next] === 0) this.pos = next + 1;
          else {
            byte = 0;
            this.padding++;
          }
        }
      } else this.padding++;
      this.acc = (this.acc << 8) | byte;
      this.count += 8;
    }
  }

  bits(n: number): number {
    if (this.count < n) this.fill();
    this.count -= n;
    return (this.acc >>> this.count) & ((1 << n) - 1);
  }

  bit(): number {
    if (this.count === 0) this.fill();
    return (this.acc >>> --this.count) & 1;
  }

  /** HUFF_EXTEND of `n` received bits. */
  receiveExtend(n: number): number {
    if (n === 0) return 0;
    const v = this.bits(n);
    return v < 1 << (n - 1) ? v - (1 << n) + 1 : v;
  }

  decode(t: HuffmanTable): number {
    if (this.count < 16) this.fill();
    const e = t.lookup[(this.acc >>> (this.count - LOOKUP_BITS)) & ((1 << LOOKUP_BITS) - 1)];
    if (e) {
      this.count -= e >> 8;
      return e & 255;
    }
    return this.decodeSlow(t);
  }

  decodeSlow(t: HuffmanTable): number {
    const code16 = (this.acc >>> (this.count - 16)) & 0xffff;
    let len = LOOKUP_BITS + 1;
    let code = code16 >>> (16 - len);
    while (code > t.maxCode[len]) code = code16 >>> (16 - ++len);
    if (len > 16) throw new JpegCorrupt("bad Huffman code in the image data");
    this.count -= len;
    return t.symbols[(t.valOffset[len] + code) & 255];
  }

  /** True if bits past the end of the data (or past a marker) have been used. */
  overran(): boolean {
    return this.count < this.padding * 8;
  }

  /** At a restart interval's end: drop the buffered bits and step over the expected RSTn marker. */
  restart(expected: number): void {
    if (this.overran()) throw new JpegCorrupt("the image data is cut off inside a restart interval");
    this.acc = this.count = this.padding = 0;
    let p = this.pos;
    while (this.data[p] === 0xff && this.data[p + 1] === 0xff) p++;
    if (this.data[p] !== 0xff || this.data[p + 1] !== 0xd0 + expected) {
      throw new JpegCorrupt(`restart marker RST${expected} is missing at byte ${p}`);
    }
    this.pos = p + 2;
  }
}

/**
 * Baseline / extended sequential block: DC difference then AC run-lengths (jdhuff.c decode_mcu). The AC
 * loop is the hot loop of the whole decode: it keeps the bit buffer in locals and refills it inline while
 * no 0xFF byte comes (BitReader.fill handles those).
 */
function decodeBlock(
  r: BitReader,
  coefs: Int16Array,
  base: number,
  dc: HuffmanTable,
  ac: HuffmanTable,
  pred: number,
): number {
  const s = r.decode(dc);
  pred += r.receiveExtend(s);
  coefs[base] = pred;
  const fast = ac.acLookup, data = r.data, end = data.length;
  let acc = r.acc, count = r.count, pos = r.pos;
  for (let k = 1; k < 64;) {
    if (count < 16) {
      while (count <= 24) {
        const b = data[pos];
        if (pos >= end || b === 0xff) {
          r.acc = acc, r.count = count, r.pos = pos;
          r.fill();
          acc = r.acc, count = r.count, pos = r.pos;
          break;
        }
        acc = (acc << 8) | b;
        pos++;
        count += 8;
      }
    }
    const e = fast[(acc >>> (count - LOOKUP_BITS)) & ((1 << LOOKUP_BITS) - 1)];
    let run: number, value: number;
    if (e) {
      count -= e & 15;
      run = (e >> 4) & 15;
      value = e >> 8;
      if (value === 0) {
        if (run !== 15) break;
        k += 16;
        continue;
      }
    } else {
      r.acc = acc, r.count = count, r.pos = pos;
      const sym = r.decode(ac);
      run = sym >> 4;
      const size = sym & 15;
      value = size ? r.receiveExtend(size) : 0;
      acc = r.acc, count = r.count, pos = r.pos;
      if (size === 0) {
        if (run !== 15) break;
        k += 16;
        continue;
      }
    }
    k += run;
    coefs[base + NATURAL[k]] = value;
    k++;
  }
  r.acc = acc, r.count = count, r.pos = pos;
  return pred;
}

/** Progressive-scan state across blocks: DC predictors and the end-of-band run (jdphuff.c). */
interface ProgressiveState {
  preds: number[];
  eobRun: number;
}

function decodeAcFirst(
  r: BitReader,
  coefs: Int16Array,
  base: number,
  ac: HuffmanTable,
  scan: JpegScan,
  st: ProgressiveState,
): void {
  if (st.eobRun > 0) {
    st.eobRun--;
    return;
  }
  for (let k = scan.ss; k <= scan.se; k++) {
    const sym = r.decode(ac);
    const run = sym >> 4, size = sym & 15;
    if (size) {
      k += run;
      coefs[base + NATURAL[k]] = r.receiveExtend(size) * (1 << scan.al);
    } else if (run === 15) k += 15;
    else {
      st.eobRun = (1 << run) - 1;
      if (run) st.eobRun += r.bits(run);
      break;
    }
  }
}

function decodeAcRefine(
  r: BitReader,
  coefs: Int16Array,
  base: number,
  ac: HuffmanTable,
  scan: JpegScan,
  st: ProgressiveState,
): void {
  const p1 = 1 << scan.al, m1 = -1 << scan.al;
  let k = scan.ss;
  const se = scan.se;
  if (st.eobRun === 0) {
    for (; k <= se; k++) {
      const sym = r.decode(ac);
      let run = sym >> 4, value = 0;
      const size = sym & 15;
      if (size) {
        if (size !== 1) throw new JpegCorrupt("bad coefficient size in a refinement scan");
        value = r.bit() ? p1 : m1;
      } else if (run !== 15) {
        st.eobRun = 1 << run;
        if (run) st.eobRun += r.bits(run);
        break;
      }
      // Step over already-nonzero coefficients (refining each) and `run` still-zero ones.
      do {
        const at = base + NATURAL[k], c = coefs[at];
        if (c !== 0) {
          // A correction bit: 1 if the magnitude gains the bit of this scan (unless it already has it).
          if (r.bit() && (c & p1) === 0) coefs[at] = c >= 0 ? c + p1 : c + m1;
        } else if (--run < 0) break;
        k++;
      } while (k <= se);
      if (value) coefs[base + NATURAL[k]] = value;
    }
  }
  if (st.eobRun > 0) {
    for (; k <= se; k++) {
      const at = base + NATURAL[k], c = coefs[at];
      if (c !== 0 && r.bit() && (c & p1) === 0) coefs[at] = c >= 0 ? c + p1 : c + m1;
    }
    st.eobRun--;
  }
}

/** Allocates zeroed coefficient planes, in SharedArrayBuffers when `shared` (for the worker pool). */
export function allocateCoefficients(frame: JpegFrame, shared: boolean): CoefficientPlanes {
  return frame.components.map((c) => {
    const n = c.blockRows * c.blocksPerLine * 64;
    return shared ? new Int16Array(new SharedArrayBuffer(n * 2)) : new Int16Array(n);
  });
}

/**
 * Decodes one scan's entropy-coded data into `planes`. `onRows(n)`, if given, is told after each row of
 * MCUs that the first n rows of MCUs of the frame are complete (meaningful for a frame's only scan).
 */
export function decodeScan(
  bytes: Uint8Array,
  frame: JpegFrame,
  scan: JpegScan,
  planes: CoefficientPlanes,
  onRows?: (mcuRows: number) => void,
): void {
  const r = new BitReader(bytes, scan.dataStart);
  const comps = scan.components.map((ci) => frame.components[ci]);
  const dcTables = scan.dcTables.map((t) => t && buildTable(t));
  const acTables = scan.acTables.map((t) => t && buildTable(t));
  const st: ProgressiveState = { preds: comps.map(() => 0), eobRun: 0 };
  const progressive = frame.progressive;
  const { ss, ah, al } = scan;

  // One block of scan component i at block (by, bx) of its plane.
  const block = (i: number, by: number, bx: number) => {
    const c = comps[i], coefs = planes[scan.components[i]];
    const base = (by * c.blocksPerLine + bx) * 64;
    if (!progressive) st.preds[i] = decodeBlock(r, coefs, base, dcTables[i]!, acTables[i]!, st.preds[i]);
    else if (ss === 0) {
      if (ah === 0) {
        st.preds[i] += r.receiveExtend(r.decode(dcTables[i]!));
        coefs[base] = st.preds[i] * (1 << al);
      } else if (r.bit()) coefs[base] |= 1 << al;
    } else if (ah === 0) decodeAcFirst(r, coefs, base, acTables[i]!, scan, st);
    else decodeAcRefine(r, coefs, base, acTables[i]!, scan, st);
  };

  // A one-component scan is non-interleaved: its MCU is one block, over the component's own block grid.
  const single = comps.length === 1;
  const mcusX = single ? Math.ceil(comps[0].width / 8) : frame.mcusX;
  const mcusY = single ? Math.ceil(comps[0].height / 8) : frame.mcusY;
  const interval = scan.restartInterval;
  let mcu = 0, nextRst = 0;
  for (let my = 0; my < mcusY; my++) {
    for (let mx = 0; mx < mcusX; mx++, mcu++) {
      if (interval && mcu > 0 && mcu % interval === 0) {
        r.restart(nextRst);
        nextRst = (nextRst + 1) & 7;
        st.preds.fill(0);
        st.eobRun = 0;
      }
      if (single) block(0, my, mx);
      else {
        for (let i = 0; i < comps.length; i++) {
          const { h, v } = comps[i];
          for (let y = 0; y < v; y++) for (let x = 0; x < h; x++) block(i, my * v + y, mx * h + x);
        }
      }
      if (r.padding && r.overran()) {
        throw new JpegCorrupt("the image data is cut off or interrupted by a marker");
      }
    }
    // A non-interleaved scan's rows are block rows of its component: v of them make a frame MCU row.
    onRows?.(single ? Math.floor((my + 1) / comps[0].v) : my + 1);
  }
}

/**
 * Decodes every scan into `planes` (from allocateCoefficients): the serial half of a JPEG decode.
 * `onRows(n)`: the first n rows of MCUs are final — after each MCU row when the frame has a single scan
 * (a baseline file: reconstruction can follow the decoding), after the last scan otherwise.
 */
export function decodeCoefficients(
  bytes: Uint8Array,
  frame: JpegFrame,
  scans: JpegScan[],
  planes: CoefficientPlanes,
  onRows?: (mcuRows: number) => void,
): void {
  for (const scan of scans) decodeScan(bytes, frame, scan, planes, scans.length === 1 ? onRows : undefined);
  onRows?.(frame.mcusY);
}
