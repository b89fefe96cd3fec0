// Public surface of the tokenizer stage: load, encode/decode, prompt ids, streaming detokenization.
export { loadTokenizer } from "./load_tokenizer.ts";
export { ChatTokenizer, IM_END, IM_START, IMAGE_TOKENS } from "./chat_tokenizer.ts";
export type { DecodeOptions, EncodeOptions, SpecialIds } from "./chat_tokenizer.ts";
export {
  buildBatchPromptIds,
  buildChatPromptIds,
  INTERNLM2_CHAT_SYSTEM_MESSAGE,
  NUM_IMAGE_TOKEN,
} from "./chat_template.ts";
export type { BatchPromptIds, BatchPromptItem, ChatPromptInput } from "./chat_template.ts";
export { ResponseStream } from "./response_stream.ts";
export { parseSentencePieceModel } from "./sentencepiece_model.ts";
export { sentencePieceToTokenizerJson } from "./sentencepiece_to_tokenizer_json.ts";
