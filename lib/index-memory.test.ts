import { describe, expect, it } from "vitest";
import { DEFAULT_MAX_ROWS } from "./adapters/local/graph-index.ts";
import { DEFAULT_MAX_CHARS, DEFAULT_MAX_TURNS } from "./adapters/local/keyword-index.ts";
import { DEFAULT_BUDGET } from "./adapters/local/vector-index.ts";
import { describeIndexMemory, indexBudgets, processMemory } from "./index-memory.ts";

const MB = 1024 * 1024;
const GB = 1024 * MB;
const DEFAULTS = { graphRows: DEFAULT_MAX_ROWS, keywordTurns: DEFAULT_MAX_TURNS, keywordChars: DEFAULT_MAX_CHARS };
/** The heap's share at the defaults, and everything's: what the budgets are sized against. */
const ON_HEAP = DEFAULT_MAX_ROWS * 270 + DEFAULT_MAX_TURNS * 1536 + DEFAULT_MAX_CHARS;

describe("the memory a process has", () => {
  const machine = { total: 24 * GB, heapLimit: 4 * GB, constrained: 0, env: {} };

  it("is the machine's, unless a Lambda function's memory, a cgroup's limit or STRATA_INDEX_MEMORY_MB says less", () => {
    expect(processMemory(machine)).toEqual({ bytes: 24 * GB, heapBytes: 4 * GB, source: "the machine's memory" });
    expect(processMemory({ ...machine, env: { AWS_LAMBDA_FUNCTION_MEMORY_SIZE: "1024" } })).toEqual({ bytes: GB, heapBytes: 4 * GB, source: "AWS_LAMBDA_FUNCTION_MEMORY_SIZE" });
    expect(processMemory({ ...machine, constrained: 2 * GB })).toMatchObject({ bytes: 2 * GB, source: "the cgroup's memory limit" });
    // The least of them.
    expect(processMemory({ ...machine, constrained: 512 * MB, env: { AWS_LAMBDA_FUNCTION_MEMORY_SIZE: "1024" } })).toMatchObject({ bytes: 512 * MB });
    // Set, it replaces the rest, more or less than they say.
    expect(processMemory({ ...machine, configuredMb: 4096, env: { AWS_LAMBDA_FUNCTION_MEMORY_SIZE: "1024" } })).toMatchObject({ bytes: 4 * GB, source: "STRATA_INDEX_MEMORY_MB" });
  });

  it("reads no limit into a cgroup's 'none' (2^64 - 1) or a variable that is not a number", () => {
    expect(processMemory({ ...machine, constrained: 2 ** 64 - 1 })).toMatchObject({ bytes: 24 * GB, source: "the machine's memory" });
    expect(processMemory({ ...machine, env: { AWS_LAMBDA_FUNCTION_MEMORY_SIZE: "lots" } })).toMatchObject({ bytes: 24 * GB });
    expect(processMemory({ ...machine, env: { AWS_LAMBDA_FUNCTION_MEMORY_SIZE: "0" } })).toMatchObject({ bytes: 24 * GB });
  });

  it("reads this process's own figures when given none", () => {
    const m = processMemory({ env: {} });
    expect(m.bytes).toBeGreaterThan(0);
    expect(m.heapBytes).toBeGreaterThan(0);
  });
});

describe("the indexes' budgets", () => {
  it("are the defaults where half the memory and half the heap hold them", () => {
    const big = indexBudgets({ bytes: 24 * GB, heapBytes: 4 * GB }, { vectors: true });
    expect(big).toEqual({ ...DEFAULTS, vectorBytes: DEFAULT_BUDGET, scale: 1 });
    expect(indexBudgets({ bytes: 24 * GB, heapBytes: 4 * GB }, { vectors: false })).toEqual({ ...DEFAULTS, vectorBytes: 0, scale: 1 });
  });

  it("are scaled alike to fit half of a 1,024 MB Lambda function, vectors counted only when held here", () => {
    const managed = indexBudgets({ bytes: GB, heapBytes: 4 * GB }, { vectors: false });
    expect(managed.scale).toBeCloseTo(GB / 2 / ON_HEAP, 9);
    expect(managed.scale).toBeLessThan(1);
    expect(managed.graphRows).toBe(Math.floor(DEFAULT_MAX_ROWS * managed.scale));
    expect(managed.keywordTurns).toBe(Math.floor(DEFAULT_MAX_TURNS * managed.scale));
    expect(managed.keywordChars).toBe(Math.floor(DEFAULT_MAX_CHARS * managed.scale));
    expect(managed.graphRows * 270 + managed.keywordTurns * 1536 + managed.keywordChars).toBeLessThanOrEqual(GB / 2);
    const embedded = indexBudgets({ bytes: GB, heapBytes: 4 * GB }, { vectors: true });
    expect(embedded.scale).toBeCloseTo(GB / 2 / (ON_HEAP + DEFAULT_BUDGET), 9);
    expect(embedded.vectorBytes).toBe(Math.floor(DEFAULT_BUDGET * embedded.scale));
  });

  it("fit half of V8's heap limit with the keyword and graph indexes, whatever the memory", () => {
    const b = indexBudgets({ bytes: 64 * GB, heapBytes: 512 * MB }, { vectors: true });
    expect(b.scale).toBeCloseTo(256 * MB / ON_HEAP, 9);
    // The vectors live off the heap, but are scaled with the rest.
    expect(b.vectorBytes).toBe(Math.floor(DEFAULT_BUDGET * b.scale));
  });

  it("are described for the start-up banner and doctor", () => {
    const memory = { bytes: GB, heapBytes: 4 * GB, source: "AWS_LAMBDA_FUNCTION_MEMORY_SIZE" };
    const scaled = describeIndexMemory(memory, indexBudgets(memory, { vectors: false }));
    expect(scaled).toMatch(/^indexes scaled to 0\.\d\d of their defaults to fit half of 1024 MB \(AWS_LAMBDA_FUNCTION_MEMORY_SIZE; heap 4096 MB\): graph [\d,]+ rows, keyword [\d,]+ turns$/);
    const big = { bytes: 24 * GB, heapBytes: 4 * GB, source: "the machine's memory" };
    expect(describeIndexMemory(big, indexBudgets(big, { vectors: true }))).toBe(
      "indexes at their defaults (graph 1,600,000 rows, keyword 150,000 turns, vectors 1024 MB); 24576 MB (the machine's memory), heap 4096 MB",
    );
  });
});
