// How much the in-process indexes (keyword, graph, vector) may hold, from the memory this process
// has. Their default budgets add up to about 1.9 GB (the JavaScript heap's share about 860 MB),
// sized for a server on a machine of several gigabytes; the API Lambda has 1,024 MB
// (stacks/api.ts) and the worker as much (stacks/jobs.ts), and V8 sizes its heap from that
// memory too. At the defaults, a warm Lambda environment serving a few large users in turn could
// fill its indexes past what it has, and be killed for it with every request it held.
//
// So the indexes together get at most half of what the process has (the rest is the runtime,
// the request in hand, a user's load while it is built beside what is held, and, embedded,
// PGlite), and the ones on the JavaScript heap (keyword, graph) at most half of V8's heap
// limit. Where both halves hold the defaults (this machine: 24 GB, a 4.2 GB heap), the
// defaults stand; below, every budget is scaled by the same factor. The memory a process has is
// the least of STRATA_INDEX_MEMORY_MB (which, when set, replaces the rest), the Lambda function's
// memory (AWS_LAMBDA_FUNCTION_MEMORY_SIZE), the cgroup's limit (process.constrainedMemory()),
// and the machine's memory.
//
// The bytes a unit costs are the indexes' measured figures (each index's comment says where):
// a graph mention or evidence row about 270 bytes, a keyword turn about 1.5 KB of postings and
// term counts, a character of held message text a byte.

import { totalmem } from "node:os";
import { getHeapStatistics } from "node:v8";
import { DEFAULT_MAX_ROWS as GRAPH_ROWS } from "./adapters/local/graph-index.ts";
import { DEFAULT_MAX_CHARS as KEYWORD_CHARS, DEFAULT_MAX_TURNS as KEYWORD_TURNS } from "./adapters/local/keyword-index.ts";
import { DEFAULT_BUDGET as VECTOR_BYTES } from "./adapters/local/vector-index.ts";

const GRAPH_ROW_BYTES = 270;
const KEYWORD_TURN_BYTES = 1536;
const KEYWORD_CHAR_BYTES = 1;
const MB = 1024 * 1024;

/** The memory this process has, and where the figure came from. */
export interface ProcessMemory {
  bytes: number;
  /** V8's heap limit (the keyword and graph indexes live on the heap). */
  heapBytes: number;
  source: string;
}

export interface IndexBudgets {
  graphRows: number;
  keywordTurns: number;
  keywordChars: number;
  /** The embedded vector index's matrices (off the heap); 0 when vectors are elsewhere (Pinecone). */
  vectorBytes: number;
  /** The factor applied to every default (1: the defaults fit). */
  scale: number;
}

export interface MemorySources {
  /** STRATA_INDEX_MEMORY_MB, parsed (config.indexMemoryMb). */
  configuredMb?: number | null;
  env?: Record<string, string | undefined>;
  constrained?: number;
  total?: number;
  heapLimit?: number;
}

/** The least of the limits this process is known to run under (see the file's comment). */
export function processMemory(sources: MemorySources = {}): ProcessMemory {
  const heapBytes = sources.heapLimit ?? getHeapStatistics().heap_size_limit;
  if (sources.configuredMb) return { bytes: sources.configuredMb * MB, heapBytes, source: "STRATA_INDEX_MEMORY_MB" };
  const env = sources.env ?? process.env;
  const total = sources.total ?? totalmem();
  const candidates: [number, string][] = [[total, "the machine's memory"]];
  const lambdaMb = Number(env.AWS_LAMBDA_FUNCTION_MEMORY_SIZE);
  if (Number.isFinite(lambdaMb) && lambdaMb > 0) candidates.push([lambdaMb * MB, "AWS_LAMBDA_FUNCTION_MEMORY_SIZE"]);
  // 0 (or, on some releases, a number past any machine: 2^64 - 1) when there is no limit.
  const constrained = sources.constrained ?? process.constrainedMemory?.() ?? 0;
  if (constrained > 0 && constrained < total) candidates.push([constrained, "the cgroup's memory limit"]);
  const [bytes, source] = candidates.reduce((a, b) => (b[0] < a[0] ? b : a));
  return { bytes, heapBytes, source };
}

/** The indexes' budgets in `memory`: the defaults, or all of them scaled to fit (see the file's comment). */
export function indexBudgets(memory: Pick<ProcessMemory, "bytes" | "heapBytes">, options: { vectors: boolean }): IndexBudgets {
  const onHeap = GRAPH_ROWS * GRAPH_ROW_BYTES + KEYWORD_TURNS * KEYWORD_TURN_BYTES + KEYWORD_CHARS * KEYWORD_CHAR_BYTES;
  const all = onHeap + (options.vectors ? VECTOR_BYTES : 0);
  const scale = Math.min(1, memory.bytes / 2 / all, memory.heapBytes / 2 / onHeap);
  return {
    graphRows: Math.floor(GRAPH_ROWS * scale),
    keywordTurns: Math.floor(KEYWORD_TURNS * scale),
    keywordChars: Math.floor(KEYWORD_CHARS * scale),
    vectorBytes: options.vectors ? Math.floor(VECTOR_BYTES * scale) : 0,
    scale,
  };
}

/** What the indexes may hold, in words, for the start-up banner and `strata doctor`. */
export function describeIndexMemory(memory: ProcessMemory, budgets: IndexBudgets): string {
  const mb = (b: number) => `${Math.round(b / MB)} MB`;
  const held = `graph ${budgets.graphRows.toLocaleString("en-US")} rows, keyword ${budgets.keywordTurns.toLocaleString("en-US")} turns${budgets.vectorBytes ? `, vectors ${mb(budgets.vectorBytes)}` : ""}`;
  return budgets.scale < 1
    ? `indexes scaled to ${budgets.scale.toFixed(2)} of their defaults to fit half of ${mb(memory.bytes)} (${memory.source}; heap ${mb(memory.heapBytes)}): ${held}`
    : `indexes at their defaults (${held}); ${mb(memory.bytes)} (${memory.source}), heap ${mb(memory.heapBytes)}`;
}
