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

Deno.test("a kernel name FILE+INC pastes INC where FILE includes another of its family, and refuses a stray one", () => {
  const own = Deno.readTextFileSync(new URL("../../kernels/attention_causal.wgsl", import.meta.url)).split(
    "\n",
  );
  const f32 = Deno.readTextFileSync(new URL("../../kernels/kv_f32.wgsl", import.meta.url)).split("\n");
  const bf16 = Deno.readTextFileSync(new URL("../../kernels/kv_bf16.wgsl", import.meta.url)).split("\n");
  const at = own.indexOf("// #include kv_f32");
  assert.ok(at > 0, "attention_causal.wgsl includes kv_f32");
  const plain = kernelSource("attention_causal").split("\n");
  const variant = kernelSource("attention_causal+kv_bf16").split("\n");
  assert.deepEqual(plain.slice(at, at + f32.length), f32);
  assert.deepEqual(variant.slice(at, at + bf16.length), bf16);
  assert.deepEqual(variant.slice(0, at), plain.slice(0, at));
  assert.deepEqual(variant.slice(at + bf16.length), plain.slice(at + f32.length));
  assert.equal(kernelLine("attention_causal+kv_bf16", at + 1), "kernels/kv_bf16.wgsl:1");
  assert.equal(kernelLine("attention_causal+kv_bf16", 1), "kernels/attention_causal.wgsl:1");
  assert.throws(() => kernelSource("gelu+kv_bf16"), /gelu.wgsl has no include of the family of kv_bf16/);
});
