/**
 * Reads WGSL files from kernels/ next to src/ (the repository layout; no bundling step). A line
 * `// #include NAME` is replaced by kernels/NAME.wgsl (one level: WGSL has no includes, and two kernels that
 * share a core keep it in one file); `kernelLine` maps a line of the assembled source back to its file.
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
  readKernelFile(name).split("\n").forEach((line, i) => {
    const inc = /^\/\/ #include ([a-z0-9_]+)\s*$/.exec(line)?.[1];
    if (!inc) {
      out.push(line);
      a!.files.push(name);
      a!.lines.push(i + 1);
      return;
    }
    readKernelFile(inc).split("\n").forEach((l, j) => {
      out.push(l);
      a!.files.push(inc);
      a!.lines.push(j + 1);
    });
  });
  a.code = out.join("\n");
  cache.set(name, a);
  return a;
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
    : `kernels/${name}.wgsl:${lineNum}`;
}
