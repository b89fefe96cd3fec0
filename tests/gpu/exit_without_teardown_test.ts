import assert from "node:assert/strict";

const helper = new URL("../../src/gpu/exit_without_teardown.ts", import.meta.url).href;

/** Runs a small program that exits through exitWithoutTeardown with code 7, with or without FFI allowed. */
async function run(allowFfi: boolean) {
  const program = `
    import { exitWithoutTeardown, openLibC } from "${helper}";
    const libc = openLibC();
    console.log(libc ? "opened" : "no libc");
    globalThis.addEventListener("unload", () => console.log("unload handler ran"));
    exitWithoutTeardown(libc, 7);
    console.log("returned");
  `;
  // `deno run -` reads the program from stdin and, unlike `deno eval`, grants only the permissions given.
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", ...(allowFfi ? ["--allow-ffi"] : []), "-"],
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const writer = child.stdin.getWriter();
  await writer.write(new TextEncoder().encode(program));
  await writer.close();
  const out = await child.output();
  return {
    code: out.code,
    stdout: new TextDecoder().decode(out.stdout),
    stderr: new TextDecoder().decode(out.stderr),
  };
}

Deno.test("exitWithoutTeardown ends the process at once with its code, skipping exit handlers", async () => {
  const { code, stdout, stderr } = await run(true);
  assert.equal(stdout, "opened\n", stderr);
  assert.equal(code, 7);
});

Deno.test("without FFI permission there is no libc, and exitWithoutTeardown returns", async () => {
  const { code, stdout, stderr } = await run(false);
  assert.equal(stdout, "no libc\nreturned\nunload handler ran\n", stderr);
  assert.equal(code, 0);
});
