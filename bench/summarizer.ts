// The local summarizer's work (issue 8): what a rolling summary costs the embedded server's
// thread. Sessions of the benchmark's coding-agent and chat turns (bench/peers/data.ts, from
// fixed seeds) are summarized whole, each round, into the summary's 250-token cap, and the
// tool prints per profile the median time a session over the rounds, the token counts made
// (and the characters they read), and a digest of the summaries' text: two checkouts that
// print the same digest made the same summaries.
//
//   node_modules/.bin/node bench/summarizer.ts [--sessions 6] [--turns 400] [--rounds 5]
//
// To compare two builds, run it from each checkout (a worktree of the other, its node_modules
// linked to this one's), one after the other, twice each: the time is this thread's alone,
// and moves with the machine.

import { createHash } from "node:crypto";
import { createLocalSummarizer } from "../lib/adapters/local/summarizer.ts";
import { createLocalTokenizer } from "../lib/adapters/local/tokenizer.ts";
import type { Tokenizer } from "../lib/core/ports.ts";
import type { Message } from "../lib/core/types.ts";
import { parseBenchArgs, wholeNumber } from "./args.ts";
import { quantile } from "./stats.ts";
import { generateMessages } from "./peers/data.ts";

const { values: opts } = parseBenchArgs(import.meta.url, {
  options: {
    sessions: { type: "string", default: "6" },
    turns: { type: "string", default: "400" },
    rounds: { type: "string", default: "5" },
  },
});
const sessions = wholeNumber(import.meta.url, "--sessions", opts.sessions, 1, { of: "sessions" });
const turns = wholeNumber(import.meta.url, "--turns", opts.turns, 1, { of: "turns" });
const rounds = wholeNumber(import.meta.url, "--rounds", opts.rounds, 1);

const local = createLocalTokenizer();
let counts = 0;
let chars = 0;
// The local tokenizer, its counts tallied (whichever of its methods this checkout's summarizer calls).
const tallied: Tokenizer = {
  name: local.name,
  count(text) {
    counts++;
    chars += text.length;
    return local.count(text);
  },
};
if (local.countWithin) {
  const within = local.countWithin;
  tallied.countWithin = (text, limit) => {
    counts++;
    chars += text.length;
    return within(text, limit);
  };
}
const summarizer = createLocalSummarizer({ tokenizer: tallied });

const asMessages = (profile: "coding" | "chat", seed: number): Message[] =>
  generateMessages({ seed, count: turns, profile, prefix: `${profile[0]}${seed}-` }).map((m, i) => ({
    tenantId: "bench",
    id: m.id,
    sessionId: `${profile}-${seed}`,
    userId: "u",
    seq: i + 1,
    role: m.role,
    name: m.name ?? null,
    content: m.content,
    metadata: {},
    tokens: 0,
    createdAt: m.createdAt,
  }));

process.stdout.write(`${sessions} sessions of ${turns} turns a profile, ${rounds} rounds (the first one also warms the code)\n`);
for (const [profile, seed0] of [["coding", 11], ["chat", 31]] as const) {
  const set = Array.from({ length: sessions }, (_, k) => asMessages(profile, seed0 + k));
  const perSession: number[] = [];
  let digest = "";
  for (let r = 0; r < rounds; r++) {
    counts = 0;
    chars = 0;
    const texts: string[] = [];
    const t0 = performance.now();
    for (const messages of set) texts.push(await summarizer.summarize({ previous: null, messages, maxTokens: 250 }));
    perSession.push((performance.now() - t0) / sessions);
    digest = createHash("sha256").update(texts.join("\u0000")).digest("hex").slice(0, 16);
  }
  process.stdout.write(
    `${profile}: ${quantile(perSession, 0.5).toFixed(1)} ms a session (median of ${rounds} rounds; each: ${perSession.map((x) => x.toFixed(1)).join(", ")}); ` +
      `${Math.round(counts / sessions).toLocaleString("en-US")} token counts a session over ${Math.round(chars / sessions).toLocaleString("en-US")} characters; summaries' digest ${digest}\n`,
  );
}
