/**
 * JPEG marker segments → the frame (size, components, sampling), the tables each scan uses and where its
 * entropy-coded data starts. Mirrors libjpeg-turbo's jdmarker.c (get_sof, get_sos, get_dht, get_dqt,
 * get_dri, the APP0/APP14 readers), the colour-space guess of jdapimin.c `default_decompress_parms`,
 * the component geometry of jdinput.c `initial_setup` and the quant-table latching of
 * `latch_quant_tables` (a component keeps the table that was current at its first scan). Tables are
 * resolved per scan because progressive files redefine Huffman tables between scans.
 * Only what src/image/jpeg_decoder.ts reproduces is accepted: Huffman-coded SOF0/1/2, 8-bit, 1 or 3
 * components; anything else is a JpegUnsupported (the caller falls back) or a corrupt file (JpegCorrupt).
 */

/** The file uses a JPEG feature this decoder does not reproduce (the caller may use another decoder). */
export class JpegUnsupported extends Error {
  constructor(message: string) {
    super(message);
    this.name = "JpegUnsupported";
  }
}

/** The data is not a well-formed JPEG (cut off, bad tables, bad entropy data). */
export class JpegCorrupt extends Error {
  constructor(message: string) {
    super(message);
    this.name = "JpegCorrupt";
  }
}

/** jpeg_natural_order: zigzag index → natural (row-major) index within an 8×8 block. */
// deno-fmt-ignore
export const ZIGZAG_TO_NATURAL = Uint8Array.from([
  0, 1, 8, 16, 9, 2, 3, 10,
  17, 24, 32, 25, 18, 11, 4, 5,
  12, 19, 26, 33, 40, 48, 41, 34,
  27, 20, 13, 6, 7, 14, 21, 28,
  35, 42, 49, 56, 57, 50, 43, 36,
  29, 22, 15, 23, 30, 37, 44, 51,
  58, 59, 52, 45, 38, 31, 39, 46,
  53, 60, 61, 54, 47, 55, 62, 63,
]);

/** A Huffman table as DHT carries it: code counts per length 1..16 and the symbols in code order. */
export interface HuffmanSpec {
  /** counts: [16] — counts[i] codes of length i+1. */
  counts: Uint8Array;
  symbols: Uint8Array;
}

export interface JpegComponent {
  id: number;
  /** Sampling factors 1..4. */
  h: number;
  v: number;
  /** Its size in samples: ceil(imageWidth·h/hmax) × ceil(imageHeight·v/vmax) (downsampled_width/height). */
  width: number;
  height: number;
  /** Its coefficient plane: blockRows × blocksPerLine blocks, MCU-padded (mcusX·h × mcusY·v). */
  blocksPerLine: number;
  blockRows: number;
  /** Quant table selector of the frame header. */
  tq: number;
  /** quant: [64] natural order, latched at the component's first scan (zeros if it never had one). */
  quant: Int32Array;
}

export interface JpegFrame {
  width: number;
  height: number;
  progressive: boolean;
  hmax: number;
  vmax: number;
  mcusX: number;
  mcusY: number;
  components: JpegComponent[];
  /** What the samples are (jdapimin.c default_decompress_parms): converted to RGB accordingly. */
  colorSpace: "gray" | "ycbcr" | "rgb";
}

export interface JpegScan {
  /** Indices into frame.components, in scan order. */
  components: number[];
  /** Huffman tables per scan component (null where the scan does not use one). */
  dcTables: (HuffmanSpec | null)[];
  acTables: (HuffmanSpec | null)[];
  /** Spectral selection and successive approximation (0, 63, 0, 0 for sequential scans). */
  ss: number;
  se: number;
  ah: number;
  al: number;
  /** MCUs per restart interval, 0 for none. */
  restartInterval: number;
  /** Byte offset of the entropy-coded data and of the marker that ends it. */
  dataStart: number;
  dataEnd: number;
}

export interface JpegStructure {
  frame: JpegFrame;
  scans: JpegScan[];
}

/** Most scans accepted in one file (libjpeg-turbo's djpeg -maxscans guards the same thing). */
export const MAX_SCANS = 1000;

/** Offset of the first marker (0xFF followed by a byte that is neither 0, 0xFF nor RSTn) at or after `pos`. */
export function findMarker(bytes: Uint8Array, pos: number): number {
  const n = bytes.length - 1;
  for (let i = bytes.indexOf(0xff, pos); i >= 0 && i < n; i = bytes.indexOf(0xff, i + 1)) {
    const m = bytes[i + 1];
    if (m !== 0 && m !== 0xff && (m < 0xd0 || m > 0xd7)) return i;
  }
  return bytes.length;
}

function readDqt(seg: Uint8Array, quant: (Int32Array | null)[]): void {
  let p = 0;
  while (p < seg.length) {
    const pq = seg[p] >> 4, tq = seg[p] & 15;
    const size = pq ? 128 : 64;
    if (tq > 3 || pq > 1 || p + 1 + size > seg.length) throw new JpegCorrupt("bad quantisation table (DQT)");
    const table = new Int32Array(64);
    for (let k = 0; k < 64; k++) {
      table[ZIGZAG_TO_NATURAL[k]] = pq ? (seg[p + 1 + 2 * k] << 8) | seg[p + 2 + 2 * k] : seg[p + 1 + k];
    }
    quant[tq] = table;
    p += 1 + size;
  }
}

function readDht(seg: Uint8Array, dc: (HuffmanSpec | null)[], ac: (HuffmanSpec | null)[]): void {
  let p = 0;
  while (p < seg.length) {
    if (p + 17 > seg.length) throw new JpegCorrupt("Huffman table (DHT) is cut off");
    const tc = seg[p] >> 4, th = seg[p] & 15;
    const counts = seg.slice(p + 1, p + 17);
    const total = counts.reduce((a, b) => a + b, 0);
    if (tc > 1 || th > 3 || total > 256 || p + 17 + total > seg.length) {
      throw new JpegCorrupt("bad Huffman table (DHT)");
    }
    // jdhuff.c jpeg_make_d_derived_tbl: the canonical codes must fit their lengths.
    let code = 0;
    for (let len = 1; len <= 16; len++) {
      code += counts[len - 1];
      if (code > 1 << len) throw new JpegCorrupt("bad Huffman table (DHT): code lengths overflow");
      code <<= 1;
    }
    (tc ? ac : dc)[th] = { counts, symbols: seg.slice(p + 17, p + 17 + total) };
    p += 17 + total;
  }
}

function readSof(seg: Uint8Array, marker: number): JpegFrame {
  if (marker !== 0xc0 && marker !== 0xc1 && marker !== 0xc2) {
    throw new JpegUnsupported(`JPEG coding process SOF${marker - 0xc0} is not supported`);
  }
  if (seg.length < 6) throw new JpegCorrupt("frame header (SOF) is cut off");
  if (seg[0] !== 8) throw new JpegUnsupported(`JPEG sample precision ${seg[0]} is not supported`);
  const height = (seg[1] << 8) | seg[2], width = (seg[3] << 8) | seg[4], nc = seg[5];
  if (nc !== 1 && nc !== 3) throw new JpegUnsupported(`JPEG with ${nc} components is not supported`);
  if (seg.length < 6 + 3 * nc) throw new JpegCorrupt("frame header (SOF) is cut off");
  if (width === 0 || height === 0) throw new JpegCorrupt(`frame size ${width}×${height} is empty`);
  const raw = Array.from({ length: nc }, (_, i) => ({
    id: seg[6 + 3 * i],
    h: seg[7 + 3 * i] >> 4,
    v: seg[7 + 3 * i] & 15,
    tq: seg[8 + 3 * i],
  }));
  for (const c of raw) {
    if (c.h < 1 || c.h > 4 || c.v < 1 || c.v > 4 || c.tq > 3) {
      throw new JpegCorrupt(`component ${c.id} has sampling ${c.h}×${c.v} / quant table ${c.tq}`);
    }
  }
  const hmax = Math.max(...raw.map((c) => c.h)), vmax = Math.max(...raw.map((c) => c.v));
  // jdsample.c jinit_upsampler: "Fractional sampling not implemented yet" (libjpeg fails too).
  if (raw.some((c) => hmax % c.h !== 0 || vmax % c.v !== 0)) {
    throw new JpegUnsupported(
      `sampling factors ${raw.map((c) => `${c.h}×${c.v}`).join(", ")} are fractional`,
    );
  }
  const mcusX = Math.ceil(width / (8 * hmax)), mcusY = Math.ceil(height / (8 * vmax));
  const components = raw.map((c) => ({
    ...c,
    width: Math.ceil((width * c.h) / hmax),
    height: Math.ceil((height * c.v) / vmax),
    blocksPerLine: mcusX * c.h,
    blockRows: mcusY * c.v,
    quant: new Int32Array(64),
  }));
  return {
    width,
    height,
    progressive: marker === 0xc2,
    hmax,
    vmax,
    mcusX,
    mcusY,
    components,
    colorSpace: nc === 1 ? "gray" : "ycbcr",
  };
}

/** jdapimin.c default_decompress_parms for 3 components: JFIF → YCbCr, Adobe transform 0 → RGB, ids R G B → RGB. */
function colorSpaceOf(
  frame: JpegFrame,
  sawJfif: boolean,
  adobeTransform: number | null,
): JpegFrame["colorSpace"] {
  if (frame.components.length === 1) return "gray";
  if (sawJfif) return "ycbcr";
  if (adobeTransform !== null) return adobeTransform === 0 ? "rgb" : "ycbcr";
  const [a, b, c] = frame.components.map((x) => x.id);
  return a === 0x52 && b === 0x47 && c === 0x42 ? "rgb" : "ycbcr";
}

function readSos(
  seg: Uint8Array,
  frame: JpegFrame,
  dc: (HuffmanSpec | null)[],
  ac: (HuffmanSpec | null)[],
): Omit<JpegScan, "restartInterval" | "dataStart" | "dataEnd"> {
  const ns = seg[0];
  if (ns < 1 || ns > 4 || seg.length < 4 + 2 * ns) throw new JpegCorrupt("bad scan header (SOS)");
  const components: number[] = [],
    dcTables: (HuffmanSpec | null)[] = [],
    acTables: (HuffmanSpec | null)[] = [];
  const [ss, se, ah, al] = [seg[1 + 2 * ns], seg[2 + 2 * ns], seg[3 + 2 * ns] >> 4, seg[3 + 2 * ns] & 15];
  for (let i = 0; i < ns; i++) {
    const ci = frame.components.findIndex((c) => c.id === seg[1 + 2 * i]);
    if (ci < 0 || components.includes(ci)) {
      throw new JpegCorrupt(`scan names unknown component ${seg[1 + 2 * i]}`);
    }
    components.push(ci);
    const td = seg[2 + 2 * i] >> 4, ta = seg[2 + 2 * i] & 15;
    // A sequential scan needs both tables; a progressive one only the kind it codes (DC first, or AC).
    const needDc = frame.progressive ? ss === 0 && ah === 0 : true;
    const needAc = frame.progressive ? ss > 0 : true;
    const dct = td < 4 ? dc[td] : null, act = ta < 4 ? ac[ta] : null;
    if ((needDc && !dct) || (needAc && !act)) {
      throw new JpegCorrupt(
        `scan uses Huffman table ${needDc && !dct ? `DC ${td}` : `AC ${ta}`} that is not defined`,
      );
    }
    dcTables.push(needDc ? dct : null);
    acTables.push(needAc ? act : null);
  }
  let blocksPerMcu = 0;
  for (const ci of components) blocksPerMcu += frame.components[ci].h * frame.components[ci].v;
  if (ns > 1 && blocksPerMcu > 10) throw new JpegCorrupt(`an MCU of ${blocksPerMcu} blocks exceeds 10`);
  // jdinput.c / jdphuff.c start_pass validity checks.
  const badProgression = frame.progressive
    ? ss > se || se > 63 || al > 13 || (ah !== 0 && ah !== al + 1) || (ss === 0 && se !== 0) ||
      (ss > 0 && ns !== 1)
    : ss !== 0 || se !== 63 || ah !== 0 || al !== 0;
  if (badProgression) throw new JpegCorrupt(`bad scan parameters Ss=${ss} Se=${se} Ah=${ah} Al=${al}`);
  return { components, dcTables, acTables, ss, se, ah, al };
}

/** Reads every marker segment; the entropy-coded data of each scan is located but not decoded. */
export function readJpegStructure(bytes: Uint8Array): JpegStructure {
  if (bytes[0] !== 0xff || bytes[1] !== 0xd8) throw new JpegCorrupt("no SOI marker");
  const quant: (Int32Array | null)[] = [null, null, null, null];
  const dc: (HuffmanSpec | null)[] = [null, null, null, null];
  const ac: (HuffmanSpec | null)[] = [null, null, null, null];
  const latched: boolean[] = [];
  let frame: JpegFrame | null = null;
  let restartInterval = 0, sawJfif = false, adobeTransform: number | null = null, sawEoi = false;
  const scans: JpegScan[] = [];
  let pos = 2;
  while (pos < bytes.length) {
    if (bytes[pos] !== 0xff) {
      throw new JpegCorrupt(`expected a marker at byte ${pos}, found 0x${bytes[pos].toString(16)}`);
    }
    while (bytes[pos + 1] === 0xff) pos++; // fill bytes
    const marker = bytes[pos + 1];
    if (marker === 0xd9) {
      sawEoi = true;
      break;
    }
    if (marker === 0x01 || (marker >= 0xd0 && marker <= 0xd7)) {
      pos += 2;
      continue;
    }
    if (pos + 4 > bytes.length) throw new JpegCorrupt(`marker segment at byte ${pos} is cut off`);
    const length = (bytes[pos + 2] << 8) | bytes[pos + 3];
    if (length < 2 || pos + 2 + length > bytes.length) {
      throw new JpegCorrupt(`marker 0x${marker.toString(16)} segment at byte ${pos} is cut off`);
    }
    const seg = bytes.subarray(pos + 4, pos + 2 + length);
    pos += 2 + length;
    if (marker >= 0xc0 && marker <= 0xcf && marker !== 0xc4 && marker !== 0xc8 && marker !== 0xcc) {
      if (frame) throw new JpegUnsupported("more than one frame (hierarchical JPEG)");
      frame = readSof(seg, marker);
    } else if (marker === 0xc4) readDht(seg, dc, ac);
    else if (marker === 0xdb) readDqt(seg, quant);
    else if (marker === 0xdd) {
      if (seg.length < 2) throw new JpegCorrupt("restart interval (DRI) is cut off");
      restartInterval = (seg[0] << 8) | seg[1];
    } else if (marker === 0xe0) {
      if (
        seg.length >= 5 && seg[0] === 0x4a && seg[1] === 0x46 && seg[2] === 0x49 && seg[3] === 0x46 &&
        seg[4] === 0
      ) {
        sawJfif = true;
      }
    } else if (marker === 0xee) {
      // "Adobe" + version(2) + flags0(2) + flags1(2) + transform(1)
      if (seg.length >= 12 && String.fromCharCode(...seg.subarray(0, 5)) === "Adobe") {
        adobeTransform = seg[11];
      }
    } else if (marker === 0xdc) {
      throw new JpegUnsupported("DNL marker (height defined after the first scan)");
    } else if (marker === 0xcc) {
      throw new JpegUnsupported("arithmetic coding conditioning (DAC)");
    } else if (marker === 0xda) {
      if (!frame) throw new JpegCorrupt("scan (SOS) before the frame header");
      const scan = readSos(seg, frame, dc, ac);
      for (const ci of scan.components) {
        if (latched[ci]) continue;
        const table = quant[frame.components[ci].tq];
        if (!table) throw new JpegCorrupt(`quantisation table ${frame.components[ci].tq} is not defined`);
        frame.components[ci].quant = table.slice();
        latched[ci] = true;
      }
      // DIFF: libjpeg takes any number of scans; each costs a pass over every block however few bytes it
      // has, so a small hostile progressive file could keep a thread busy for minutes. Real encoders
      // write at most a few dozen.
      if (scans.length === MAX_SCANS) throw new JpegCorrupt(`the file has more than ${MAX_SCANS} scans`);
      const dataEnd = findMarker(bytes, pos);
      scans.push({ ...scan, restartInterval, dataStart: pos, dataEnd });
      pos = dataEnd;
    }
    // APPn other than 0/14, COM, JPG and reserved markers are skipped.
  }
  if (!frame) throw new JpegCorrupt("no frame header (SOF)");
  if (scans.length === 0) throw new JpegCorrupt("no scan (SOS)");
  // Pillow raises "image file is truncated" where libjpeg still waits for data: a progressive file must
  // reach EOI (more scans could follow), a sequential one must have scanned every component.
  if (frame.progressive && !sawEoi) throw new JpegCorrupt("the data ends before the EOI marker");
  if (!frame.progressive && latched.filter(Boolean).length !== frame.components.length) {
    throw new JpegCorrupt("the data ends before every component was scanned");
  }
  if (frame.progressive && wouldSmoothBlocks(frame, scans)) {
    throw new JpegUnsupported(
      "a progressive JPEG whose scans leave coefficient bits undecoded (block smoothing)",
    );
  }
  frame.colorSpace = colorSpaceOf(frame, sawJfif, adobeTransform);
  return { frame, scans };
}

/**
 * jdcoefct.c smoothing_ok: libjpeg-turbo (do_block_smoothing TRUE) smooths a progressive image whose DC is
 * decoded but whose first 9 AC coefficients are not all decoded to their last bit (coef_bits ≠ 0), unless
 * one of those quantisers is zero. We do not reproduce that filter, so such a file goes elsewhere; a file
 * whose scans reach Al = 0 everywhere (every real encoder's script) is unaffected.
 */
function wouldSmoothBlocks(frame: JpegFrame, scans: JpegScan[]): boolean {
  const coefBits = frame.components.map(() => new Int8Array(64).fill(-1));
  for (const scan of scans) {
    for (const ci of scan.components) coefBits[ci].fill(scan.al, scan.ss, scan.se + 1);
  }
  let useful = false;
  for (let ci = 0; ci < frame.components.length; ci++) {
    const quant = frame.components[ci].quant;
    for (let k = 0; k < 10; k++) if (quant[ZIGZAG_TO_NATURAL[k]] === 0) return false;
    if (coefBits[ci][0] < 0) return false;
    for (let k = 1; k < 10; k++) if (coefBits[ci][k] !== 0) useful = true;
  }
  return useful;
}
