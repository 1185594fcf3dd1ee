// Local tokenizer: OpenAI's o200k_base BPE (GPT-4o family) in pure JS, so token counts made
// at ingest match what the models the context is packed for will see.

import { countTokens } from "gpt-tokenizer/encoding/o200k_base";
import type { Tokenizer } from "../../core/ports.ts";

// User text may contain "<|endoftext|>" and friends; count them as the plain text they
// are instead of letting the encoder throw on a "disallowed special token".
const PLAIN_TEXT = { disallowedSpecial: new Set<string>() };

export function createLocalTokenizer(): Tokenizer {
  return {
    name: "o200k_base",
    count(text: string): number {
      return text === "" ? 0 : countTokens(text, PLAIN_TEXT);
    },
  };
}
