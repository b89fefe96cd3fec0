import type { Recorder } from "../gpu/recorder.ts";
import { f32 } from "../gpu/recorder.ts";
import { expectTensor, type Tensor } from "../gpu/tensor.ts";
import { flatGrid } from "./grid.ts";

/**
 * HF repetition penalty, in place: logits[b, v] of tokens with seen[b, v] = 1 are multiplied by
 * `penalty` when negative and divided by it otherwise. logits: [B, V] f32, seen: [B, V] u32 (0/1).
 * HF penalises every id of input_ids, prompt included: mark the prompt with `markSeen` first.
 */
export function repetitionPenalty(r: Recorder, logits: Tensor, seen: Tensor, penalty: number): void {
  const [B, V] = logits.shape;
  expectTensor("repetitionPenalty logits", logits, "f32", [B, V]);
  expectTensor("repetitionPenalty seen", seen, "u32", [B, V]);
  if (!(penalty > 0)) throw new Error(`repetitionPenalty: penalty ${penalty} must be a positive number`);
  const { workgroups, groupsPerRow } = flatGrid(B * V);
  r.dispatch("repetition_penalty", {
    bindings: [logits, seen],
    params: [B * V, f32(penalty), groupsPerRow],
    workgroups,
    label: `repetition_penalty ${logits.label}`,
  });
}

/**
 * seen[b, ids[b, l]] = 1 for every id in [0, V) (others, e.g. −1 for padding, are skipped).
 * ids: [B] or [B, L] i32; seen: [B, V] u32, zeroed by the caller when a sequence starts.
 */
export function markSeen(r: Recorder, ids: Tensor, seen: Tensor): void {
  const [B, V] = seen.shape;
  expectTensor("markSeen seen", seen, "u32", [B, V]);
  const L = ids.shape.length === 2 ? ids.shape[1] : 1;
  expectTensor("markSeen ids", ids, "i32", ids.shape.length === 2 ? [B, L] : [B]);
  const { workgroups, groupsPerRow } = flatGrid(B * L);
  r.dispatch("mark_seen", {
    bindings: [ids, seen],
    params: [B * L, L, V, groupsPerRow],
    workgroups,
    label: `mark_seen ${seen.label}`,
  });
}
