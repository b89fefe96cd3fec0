import assert from "node:assert/strict";
import { join } from "node:path";
import {
  FIXTURE_MODEL_DIR,
  FIXTURE_SAFETENSORS,
  parseSafetensorsBytes,
  withTempDir,
  writeSafetensors,
  writeShardedFixture,
} from "./safetensors_files.ts";

const SCRIPT = new URL("../../scripts/inspect_checkpoint.ts", import.meta.url).pathname;
const fixtureTensors = parseSafetensorsBytes(await Deno.readFile(FIXTURE_SAFETENSORS));
const fixtureBytes = fixtureTensors.reduce((sum, t) => sum + t.data.byteLength, 0);

async function inspect(...args: string[]) {
  const { code, stdout, stderr } = await new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-read", SCRIPT, ...args],
    stdout: "piped",
    stderr: "piped",
  }).output();
  return { code, stdout: new TextDecoder().decode(stdout), stderr: new TextDecoder().decode(stderr) };
}

Deno.test("inspect_checkpoint lists every fixture tensor with dtype, shape, bytes and file, then totals", async () => {
  const { code, stdout } = await inspect(FIXTURE_MODEL_DIR);
  assert.equal(code, 0);
  const lines = stdout.trimEnd().split("\n");
  assert.match(lines[0], /^name\s+dtype\s+shape\s+bytes\s+file$/);
  const rows = lines.slice(1, lines.indexOf(""));
  assert.equal(rows.length, fixtureTensors.length);
  for (const t of fixtureTensors) {
    const row = rows.find((r) => r.split(/\s+/)[0] === t.name);
    assert.ok(row, `no row for ${t.name}`);
    const shape = `[${t.shape.join(", ")}]`.replace(/[[\]]/g, "\\$&");
    assert.match(
      row,
      new RegExp(`^\\S+\\s+${t.dtype}\\s+${shape}\\s+${t.data.byteLength}\\s+model\\.safetensors$`),
    );
  }
  assert.ok(stdout.includes(`total: ${fixtureTensors.length} tensors, ${fixtureBytes} bytes`));
  const int8 = fixtureTensors.filter((t) => t.dtype === "I8");
  const int8Bytes = int8.reduce((sum, t) => sum + t.data.byteLength, 0);
  assert.ok(stdout.includes(`  I8: ${int8.length} tensors, ${int8Bytes} bytes`));
});

Deno.test("inspect_checkpoint sorts layer numbers numerically", async () => {
  await withTempDir(async (dir) => {
    // Names with layers 2 and 10 prove numeric (not lexicographic) order.
    await writeSafetensors(join(dir, "model.safetensors"), [
      { name: "m.layers.10.w", dtype: "U8", shape: [1], data: new Uint8Array(1) },
      { name: "m.layers.2.w", dtype: "U8", shape: [1], data: new Uint8Array(1) },
    ]);
    const { stdout } = await inspect(dir, "--json");
    assert.deepEqual(JSON.parse(stdout).tensors.map((t: { name: string }) => t.name), [
      "m.layers.2.w",
      "m.layers.10.w",
    ]);
  });
});

Deno.test("inspect_checkpoint --json on a sharded copy reports per-shard totals", async () => {
  await withTempDir(async (dir) => {
    const weightMap = await writeShardedFixture(dir, 3);
    const { code, stdout } = await inspect(dir, "--json");
    assert.equal(code, 0);
    const report = JSON.parse(stdout);
    assert.equal(report.tensors.length, fixtureTensors.length);
    assert.equal(report.totals.tensors, fixtureTensors.length);
    assert.equal(report.totals.bytes, fixtureBytes);
    for (const t of report.tensors) assert.equal(t.file, weightMap[t.name], t.name);
    const shards = Object.keys(report.totals.byFile);
    assert.deepEqual(shards, [1, 2, 3].map((i) => `model-0000${i}-of-00003.safetensors`));
    const perShard = shards.map((s) =>
      fixtureTensors.filter((t) => weightMap[t.name] === s).reduce((sum, t) => sum + t.data.byteLength, 0)
    );
    assert.deepEqual(shards.map((s) => report.totals.byFile[s].bytes), perShard);
  });
});

Deno.test("inspect_checkpoint exits 1 with the reason for a directory without weights, 2 without arguments", async () => {
  await withTempDir(async (dir) => {
    const missing = await inspect(dir);
    assert.equal(missing.code, 1);
    assert.equal(missing.stdout, "");
    assert.match(
      missing.stderr,
      new RegExp(`No model\\.safetensors or model\\.safetensors\\.index\\.json in ${dir}`),
    );
  });
  const usage = await inspect();
  assert.equal(usage.code, 2);
  assert.match(usage.stderr, /^Usage: /);
});
