/** Reads WGSL files from kernels/ next to src/ (the repository layout; no bundling step). */
const cache = new Map<string, string>();

export function kernelSource(name: string): string {
  let code = cache.get(name);
  if (code === undefined) {
    const url = new URL(`../../kernels/${name}.wgsl`, import.meta.url);
    try {
      code = Deno.readTextFileSync(url);
    } catch (e) {
      throw new Error(`Kernel "${name}": cannot read ${url.pathname}: ${(e as Error).message}`);
    }
    cache.set(name, code);
  }
  return code;
}
