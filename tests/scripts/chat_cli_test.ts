import assert from "node:assert/strict";
import { buildChatPromptIds } from "../../src/tokenizer/chat_template.ts";
import { loadTokenizer } from "../../src/tokenizer/load_tokenizer.ts";
import { loadModelConfig } from "../../src/weights/config.ts";
import { caseById, fixtureRoot, goldenI32, manifest, modelDir } from "../model/tiny_fixture.ts";

const root = new URL("../../", import.meta.url).pathname;

async function chat(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-read", "--allow-env", "--allow-ffi", "scripts/chat.ts", ...args],
    cwd: root,
    env: { XDG_RUNTIME_DIR: Deno.env.get("XDG_RUNTIME_DIR") ?? "/tmp", NO_COLOR: "1" },
  }).output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

const image = (key: string) => fixtureRoot + "goldens/" + manifest.images[key].file;

Deno.test("chat --dry-run --json prints the reference prompt ids and image grids", async () => {
  const c = caseById("two_images_concat");
  const { code, stdout, stderr } = await chat([
    "--model",
    modelDir,
    ...c.images.flatMap((k: string) => ["--image", image(k)]),
    "--dry-run",
    "--json",
    c.question,
  ]);
  assert.equal(code, 0, stderr);
  const got = JSON.parse(stdout);
  assert.deepEqual(got.prompt_token_ids, Array.from(goldenI32(c.input_ids.file)));
  assert.deepEqual(
    got.images,
    c.images.map((k: string) => ({ grid: manifest.images[k].grid, tiles: manifest.images[k].num_tiles })),
  );
});

Deno.test("chat --dry-run --json --image-layout numbered prints the multi_image_chat prompt ids", async () => {
  const c = caseById("two_images_concat");
  const { code, stdout, stderr } = await chat([
    "--model",
    modelDir,
    ...c.images.flatMap((k: string) => ["--image", image(k)]),
    "--image-layout",
    "numbered",
    "--dry-run",
    "--json",
    c.question,
  ]);
  assert.equal(code, 0, stderr);
  const got = JSON.parse(stdout);
  const expected = buildChatPromptIds(await loadTokenizer(modelDir), {
    question: c.question,
    imageTileCounts: c.images.map((k: string) => manifest.images[k].num_tiles),
    imageLayout: "numbered",
    numImageToken: (await loadModelConfig(modelDir)).numImageToken,
  });
  assert.deepEqual(got.prompt_token_ids, expected);
  assert.notDeepEqual(got.prompt_token_ids, Array.from(goldenI32(c.input_ids.file)));
});

Deno.test("chat --json runs the model: a second round from a history file matches the reference", async () => {
  const c = caseById("history_round2");
  const dir = await Deno.makeTempDir();
  const history = c.history.map(([q, a]: [string, string]) => [q.replace(/^<img>.*?<\/img>\n/s, ""), a]);
  await Deno.writeTextFile(`${dir}/history.json`, JSON.stringify(history));
  const { code, stdout, stderr } = await chat([
    "--model",
    modelDir,
    "--image",
    image("img3"),
    "--history",
    `${dir}/history.json`,
    "--max-new-tokens",
    "32",
    "--json",
    c.question,
  ]);
  await Deno.remove(dir, { recursive: true });
  assert.equal(code, 0, stderr);
  const got = JSON.parse(stdout);
  assert.deepEqual(got.prompt_token_ids, Array.from(goldenI32(c.input_ids.file)));
  assert.deepEqual(got.output_token_ids, c.response_ids);
  assert.equal(got.response, c.response);
});

Deno.test("chat rejects bad flags with a message naming the flag", async () => {
  const cases: [string[], RegExp][] = [
    [["--model", modelDir, "--max-num", "41", "q"], /--max-num must be an integer from 1 to 40, got "41"/],
    [["--image", "x.png", "q"], /--model DIR is required/],
    [["--model", modelDir], /give exactly one QUESTION/],
    [["--model", modelDir, "--image", "/nonexistent.png", "q"], /--image \/nonexistent.png/],
    [
      ["--model", modelDir, "--image-layout", "grid", "q"],
      /--image-layout must be one of concat, numbered, got "grid"/,
    ],
  ];
  for (const [args, message] of cases) {
    const { code, stderr } = await chat(args);
    assert.equal(code, 2, args.join(" "));
    assert.match(stderr, message);
  }
});
