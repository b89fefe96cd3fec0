/**
 * Reads WGSL files from kernels/ next to src/ (the repository layout; no bundling step). A line
 * `// #include NAME` is replaced by kernels/NAME.wgsl (one level: WGSL has no includes, and two kernels that
 * share a core keep it in one file); `kernelLine` maps a line of the assembled source back to its file.
 *
 * A kernel name `FILE+INC` is a variant: FILE.wgsl with its include of INC's family (the name up to its last
 * `_`) replaced by INC, e.g. `attention_decode+kv_bf16` is attention_decode.wgsl with kernels/kv_bf16.wgsl
 * where it says `// #include kv_f32`. A variant is a module and pipeline of its own (the name is the cache
 * key), so a binding's type can differ between them (WGSL cannot change it by an override).
 */
interface Assembled {
  code: string;
  /** Line i (0-based) of code comes from `files[i]`, line `lines[i]` (1-based). */
  files: string[];
  lines: number[];
}
const cache = new Map<string, Assembled>();

function readKernelFile(name: string): string {
  const url = new URL(`../../kernels/${name}.wgsl`, import.meta.url);
  try {
    return Deno.readTextFileSync(url);
  } catch (e) {
    throw new Error(`Kernel "${name}": cannot read ${url.pathname}: ${(e as Error).message}`);
  }
}

function assemble(name: string): Assembled {
  let a = cache.get(name);
  if (a) return a;
  a = { code: "", files: [], lines: [] };
  const out: string[] = [];
  const [file, ...swaps] = name.split("+");
  const unused = new Set(swaps);
  readKernelFile(file).split("\n").forEach((line, i) => {
    let inc = /^\/\/ #include ([a-z0-9_]+)\s*$/.exec(line)?.[1];
    if (!inc) {
      out.push(line);
      a!.files.push(file);
      a!.lines.push(i + 1);
      return;
    }
    const swap = swaps.find((s) => family(s) === family(inc!));
    if (swap) {
      unused.delete(swap);
      inc = swap;
    }
    readKernelFile(inc).split("\n").forEach((l, j) => {
      out.push(l);
      a!.files.push(inc);
      a!.lines.push(j + 1);
    });
  });
  if (unused.size > 0) {
    throw new Error(`Kernel "${name}": kernels/${file}.wgsl has no include of the family of ${[...unused]}`);
  }
  a.code = out.join("\n");
  cache.set(name, a);
  return a;
}

/** An include's family: its name up to the last `_` (kv_f32 and kv_bf16 are both "kv"). */
function family(include: string): string {
  const i = include.lastIndexOf("_");
  return i > 0 ? include.slice(0, i) : include;
}

export function kernelSource(name: string): string {
  return assemble(name).code;
}

/** "kernels/FILE.wgsl:LINE" for line `lineNum` (1-based) of kernelSource(name). */
export function kernelLine(name: string, lineNum: number): string {
  const a = assemble(name);
  const i = lineNum - 1;
  return i >= 0 && i < a.files.length
    ? `kernels/${a.files[i]}.wgsl:${a.lines[i]}`
    : `kernels/${name.split("+")[0]}.wgsl:${lineNum}`;
}
