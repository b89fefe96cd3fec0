// The bench's --tiling: a decode product's kernel tiling set by hand instead of chosen from its shape, so
// that a sweep in the model (PERF.md v69, v72, v76: each re-tuned choice came from one) runs on the
// committed code and its log names a flag anyone can repeat. Empty unless a benchmark fills it; read each
// time a product is recorded.
import type { Dp4aConfig } from "./matvec_dp4a.ts";
import type { MatvecConfig, MatvecMode } from "./matvec_i8.ts";

/** A weight-only product's tiling of kernels/matvec_i8.wgsl, or (plain linears) kernels/linear_matvec.wgsl. */
export type MatvecChoice = MatvecConfig | "linear_matvec";

export interface TilingOverrides {
  /** Weight-only products by `matvecKey` (kernels/matvec_i8.wgsl and matvec_i8_vec.wgsl). */
  matvec: Map<string, MatvecChoice>;
  /** LLM.int8 products by `dp4aKey` (kernels/matvec_dp4a.wgsl). */
  dp4a: Map<string, Dp4aConfig>;
}

export const tilingOverrides: TilingOverrides = { matvec: new Map(), dp4a: new Map() };

/** `MODE:T:N:K`, N the rows of one matrix (gate·up: of w1). */
export function matvecKey(mode: MatvecMode, T: number, N: number, K: number): string {
  return `${mode}:${T}:${N}:${K}`;
}

/** `T:N:K`, or `gateUp:T:N:K` for the gate·up product (N the rows of w1). */
export function dp4aKey(gateUp: boolean, T: number, N: number, K: number): string {
  return `${gateUp ? "gateUp:" : ""}${T}:${N}:${K}`;
}

/** The weight-only tiling set for this product, if any (no key is built while none is set: every step asks). */
export function matvecOverride(mode: MatvecMode, T: number, N: number, K: number): MatvecChoice | undefined {
  return tilingOverrides.matvec.size > 0 ? tilingOverrides.matvec.get(matvecKey(mode, T, N, K)) : undefined;
}

/** The LLM.int8 tiling set for this product, if any (as matvecOverride). */
export function dp4aOverride(gateUp: boolean, T: number, N: number, K: number): Dp4aConfig | undefined {
  return tilingOverrides.dp4a.size > 0 ? tilingOverrides.dp4a.get(dp4aKey(gateUp, T, N, K)) : undefined;
}

const syntax = "items separated by ';': matvec_i8:MODE:T:N:K=R4,L64,U2[,VEC][,P264] (MODE linear, norm or " +
  "gateUp), matvec_i8:linear:T:N:K=linear_matvec, or matvec_dp4a:[gateUp:]T:N:K=R1,L16,U4[,PH4][,S2]";

/** Parses --tiling (`syntax`) into a new set of overrides; throws naming the first bad item. */
export function parseTilingOverrides(s: string): TilingOverrides {
  const out: TilingOverrides = { matvec: new Map(), dp4a: new Map() };
  for (const item of s.split(";").map((i) => i.trim()).filter(Boolean)) {
    const fail = (why: string): never => {
      throw new Error(`--tiling "${item}": ${why}; ${syntax}`);
    };
    const eq = item.indexOf("=");
    if (eq < 0) fail("no '='");
    const [kernel, ...key] = item.slice(0, eq).split(":");
    const value = item.slice(eq + 1);
    const dims = key.slice(-3).map(Number);
    if (!dims.every((d) => Number.isInteger(d) && d >= 1) || (kernel === "matvec_dp4a" && dims[0] > 16)) {
      fail("T, N and K must be whole numbers ≥ 1 (T ≤ 16 for matvec_dp4a: two row groups)");
    }
    const [T, N, K] = dims;
    if (kernel === "matvec_i8") {
      const mode = key[0] as MatvecMode;
      if (key.length !== 4 || !["linear", "norm", "gateUp"].includes(mode)) fail("MODE:T:N:K expected");
      if (value === "linear_matvec") {
        if (mode !== "linear") fail("linear_matvec takes plain linears only");
        out.matvec.set(matvecKey(mode, T, N, K), value);
      } else {
        out.matvec.set(matvecKey(mode, T, N, K), matvecTiling(value, fail));
      }
    } else if (kernel === "matvec_dp4a") {
      const gateUp = key.length === 4 && key[0] === "gateUp";
      if (key.length !== 3 && !gateUp) fail("[gateUp:]T:N:K expected");
      const c = dp4aTiling(value, fail);
      if (gateUp && c.R === 1) fail("the gate·up product takes R ≥ 2");
      if (c.split === 2 && T < 2) fail("S2 takes T ≥ 2");
      out.dp4a.set(dp4aKey(gateUp, T, N, K), c);
    } else {
      fail(`no kernel "${kernel}"`);
    }
  }
  return out;
}

/** Fields `R<n>`, `L<n>`, `U<n>` and flags, each checked against the values the kernel takes. */
function fields(value: string, fail: (why: string) => never): Map<string, string> {
  const m = new Map<string, string>();
  for (const f of value.split(",")) {
    const p = /^(VEC|PH|[RLUPS])(\d*)$/.exec(f);
    if (!p || m.has(p[1])) fail(`bad or repeated field "${f}"`);
    m.set(p![1], p![2]);
  }
  return m;
}

function pick<T extends number>(
  m: Map<string, string>,
  name: string,
  allowed: readonly T[],
  fail: (why: string) => never,
): T {
  const v = Number(m.get(name));
  if (!allowed.includes(v as T)) fail(`${name} must be one of ${allowed.join(", ")}`);
  return v as T;
}

function matvecTiling(value: string, fail: (why: string) => never): MatvecConfig {
  const m = fields(value, fail);
  if (m.has("PH") || m.has("S")) fail("PH and S are matvec_dp4a's");
  const c: MatvecConfig = {
    R: pick(m, "R", [1, 2, 4, 8] as const, fail),
    LANES: pick(m, "L", [8, 16, 32, 64, 128, 256] as const, fail),
    U: pick(m, "U", [1, 2, 4, 8] as const, fail),
  };
  if (m.has("VEC")) {
    if (m.get("VEC") !== "") fail("VEC takes no number");
    c.VEC = true;
  }
  if (m.has("P")) {
    const persist = Number(m.get("P"));
    if (!(Number.isInteger(persist) && persist >= 1 && persist <= 65535)) fail("P must be 1..65535");
    c.persist = persist;
  }
  return c;
}

function dp4aTiling(value: string, fail: (why: string) => never): Dp4aConfig {
  const m = fields(value, fail);
  if (m.has("VEC") || m.has("P")) fail("VEC and P are matvec_i8's");
  const c: Dp4aConfig = {
    R: pick(m, "R", [1, 2, 4] as const, fail),
    LANES: pick(m, "L", [4, 8, 16, 32] as const, fail),
    U: pick(m, "U", [1, 2, 4] as const, fail),
  };
  if (m.has("PH")) c.phases = pick(m, "PH", [1, 2, 4, 8] as const, fail);
  if (m.has("S")) c.split = pick(m, "S", [1, 2] as const, fail);
  return c;
}

/** The overrides as --tiling would give them (the bench's `tilings` result), or "none". */
export function describeTilingOverrides(o: TilingOverrides): string {
  const matvec = [...o.matvec].map(([k, c]) =>
    `matvec_i8:${k}=${
      c === "linear_matvec" ? c : [
        `R${c.R}`,
        `L${c.LANES}`,
        `U${c.U}`,
        ...(c.VEC ? ["VEC"] : []),
        ...(c.persist ? [`P${c.persist}`] : []),
      ]
        .join(",")
    }`
  );
  const dp4a = [...o.dp4a].map(([k, c]) =>
    `matvec_dp4a:${k}=${
      [
        `R${c.R}`,
        `L${c.LANES}`,
        `U${c.U}`,
        ...(c.phases ? [`PH${c.phases}`] : []),
        ...(c.split ? [`S${c.split}`] : []),
      ]
        .join(",")
    }`
  );
  return [...matvec, ...dp4a].join(";") || "none";
}
