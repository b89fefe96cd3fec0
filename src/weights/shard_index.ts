/**
 * `model.safetensors.index.json`, as transformers' `save_pretrained` writes it for sharded checkpoints:
 * `{"metadata": {"total_size": N}, "weight_map": {tensor name: shard file name}}`.
 */
import { z } from "zod";
import { ModelFileError } from "./model_file_error.ts";

export const INDEX_FILE = "model.safetensors.index.json";

export interface ShardIndex {
  /** `metadata.total_size` when present (informational: transformers' byte count of all tensors). */
  totalSize: number | null;
  /** tensor name → shard file name (relative to the model directory). */
  weightMap: Map<string, string>;
}

const indexSchema = z.object({
  metadata: z.object({ total_size: z.number().int().nonnegative().optional() }).nullish(),
  weight_map: z.record(
    z.string(),
    // A plain file name: the index must not point outside the model directory.
    z.string().regex(/^[^/\\]+$/).refine((f) => f !== "." && f !== "..", "must be a plain file name"),
  ),
});

/** Parses the index text; `path` is used in error messages. */
export function parseShardIndex(text: string, path: string): ShardIndex {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new ModelFileError(`${path} is not valid JSON: ${(err as Error).message}`, path);
  }
  const parsed = indexSchema.safeParse(json);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const where = issue.path.map(String).join(".") || "the top level";
    throw new ModelFileError(
      `${path}: ${where} is invalid (${issue.message}); expected {"metadata": {"total_size": N}, ` +
        `"weight_map": {tensor: shard file}}`,
      path,
    );
  }
  const weightMap = new Map(Object.entries(parsed.data.weight_map));
  if (weightMap.size === 0) throw new ModelFileError(`${path}: weight_map is empty`, path);
  return { totalSize: parsed.data.metadata?.total_size ?? null, weightMap };
}
