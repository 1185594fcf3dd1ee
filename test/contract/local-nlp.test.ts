import { createLocalEmbedder } from "../../lib/adapters/local/embedder.ts";
import { createLocalExtractor } from "../../lib/adapters/local/extractor-host.ts";
import { createLocalTokenizer } from "../../lib/adapters/local/tokenizer.ts";
import { embedderContract } from "./embedder.contract.ts";
import { extractorContract } from "./extractor.contract.ts";
import { tokenizerContract } from "./tokenizer.contract.ts";

embedderContract("local hashing", async () => createLocalEmbedder());
extractorContract("local NLP", async () => createLocalExtractor());
tokenizerContract("o200k_base", async () => createLocalTokenizer());
