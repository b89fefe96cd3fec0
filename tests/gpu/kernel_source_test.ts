import assert from "node:assert/strict";
import { kernelLine, kernelSource } from "../../src/gpu/kernel_source.ts";

Deno.test("kernelSource pastes `// #include` files and kernelLine maps lines back to their file", () => {
  const own = Deno.readTextFileSync(new URL("../../kernels/attention_full.wgsl", import.meta.url)).split(
    "\n",
  );
  const inc = Deno.readTextFileSync(new URL("../../kernels/flash_tile.wgsl", import.meta.url)).split("\n");
  const at = own.indexOf("// #include flash_tile");
  assert.ok(at > 0, "attention_full.wgsl includes flash_tile");
  const code = kernelSource("attention_full").split("\n");
  assert.equal(code.length, own.length - 1 + inc.length);
  assert.ok(!code.some((l) => l.startsWith("// #include")));
  assert.deepEqual(code.slice(at, at + inc.length), inc);
  // Before the include, inside it, and the kernel's own lines after it.
  assert.equal(kernelLine("attention_full", at), `kernels/attention_full.wgsl:${at}`);
  assert.equal(kernelLine("attention_full", at + 1), "kernels/flash_tile.wgsl:1");
  assert.equal(kernelLine("attention_full", at + inc.length), `kernels/flash_tile.wgsl:${inc.length}`);
  assert.equal(kernelLine("attention_full", at + inc.length + 1), `kernels/attention_full.wgsl:${at + 2}`);
  assert.equal(code[at + inc.length], own[at + 1]);
  // A kernel without includes is its file.
  const plain = Deno.readTextFileSync(new URL("../../kernels/gelu.wgsl", import.meta.url));
  assert.equal(kernelSource("gelu"), plain);
  assert.equal(kernelLine("gelu", 3), "kernels/gelu.wgsl:3");
});
