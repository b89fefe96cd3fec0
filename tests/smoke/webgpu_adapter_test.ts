Deno.test("navigator.gpu gives an adapter on this host", async () => {
  const adapter = await navigator.gpu.requestAdapter();
  if (!adapter) throw new Error("no WebGPU adapter");
});
