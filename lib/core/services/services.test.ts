// The core services over the embedded adapters: ingest with a failing hot tier, the
// read-through repair of the recent window, degraded tiers on the read path, and the
// packing rules of the context call.

import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Archive, HotStore } from "../ports.ts";
import type { Strata } from "../../runtime.ts";
import { uid } from "../../../test/fixtures/pglite.ts";
import { startTestStrata } from "../../../test/fixtures/strata.ts";
import { Bm25Corpus } from "../bm25.ts";
import { assembleContext, DEFAULT_CONTEXT_CONFIG, implicitQuery, rankRecalled, recallLimit, renderPrompt } from "./context.ts";
import { forget } from "./forget.ts";
import { ingestMessages } from "./ingest.ts";
import { hybridSearch, queryTerms, type SearchHit } from "./search.ts";
import type { Message } from "../types.ts";

let strata: Strata;
beforeAll(async () => {
  strata = await startTestStrata({ recentWindow: 6 });
});
afterAll(async () => {
  await strata?.close();
});

/** The embedded hot store with a switch that makes every call fail, as a crashed Redis would. */
function breakable(inner: HotStore): HotStore & { broken: boolean } {
  const wrapper = { broken: false } as HotStore & { broken: boolean };
  for (const key of ["appendWindow", "readWindow", "replaceWindow", "dropSession", "ping", "close"] as const) {
    (wrapper as unknown as Record<string, unknown>)[key] = (...args: unknown[]) =>
      wrapper.broken ? Promise.reject(new Error("hot tier down")) : (inner[key] as (...a: unknown[]) => Promise<unknown>).apply(inner, args);
  }
  Object.defineProperty(wrapper, "adapter", { value: inner.adapter });
  return wrapper;
}

const say = (content: string, name = "Ann") => ({ role: "user" as const, name, content });

describe("ingest", () => {
  it("counts tokens once at ingest and stores them", async () => {
    const s = uid("s");
    const out = await ingestMessages(strata.deps, { tenantId: "default", sessionId: s, userId: "ann", messages: [say("one two three four five")] });
    const [m] = await strata.deps.archive.getMessages("default", [out.messages[0]!.id]);
    expect(m!.tokens).toBe(strata.deps.tokenizer.count("one two three four five"));
  });

  it("acknowledges writes while the hot tier is down, and the next read repairs the window", async () => {
    const deps = { ...strata.deps, hot: breakable(strata.deps.hot) };
    const s = uid("s");
    await ingestMessages(deps, { tenantId: "default", sessionId: s, userId: "ann", messages: [say("first"), say("second")] });
    deps.hot.broken = true;
    const during = await ingestMessages(deps, { tenantId: "default", sessionId: s, userId: "ann", messages: [say("third, while the cache is down")] });
    expect(during.messages[0]!.seq).toBe(3);
    const degradedRead = await assembleContext(deps, { tenantId: "default", sessionId: s, budget: 500 });
    expect(degradedRead.degraded).toContain("hot");
    expect(degradedRead.recent.map((m) => m.content)).toEqual(["first", "second", "third, while the cache is down"]);

    deps.hot.broken = false;
    const repaired = await assembleContext(deps, { tenantId: "default", sessionId: s, budget: 500 });
    expect(repaired.degraded).toEqual([]);
    expect(repaired.recent.map((m) => m.seq)).toEqual([1, 2, 3]);
    await new Promise((r) => setTimeout(r, 10)); // repair is written in the background
    expect((await deps.hot.readWindow("default", s, 10))?.map((m) => m.seq)).toEqual([1, 2, 3]);
  });

  it("appends the hot window and dispatches the jobs side by side, and acknowledges when either fails", async () => {
    // The append waits until the jobs were dispatched: one after the other, it would wait forever.
    let dispatched!: () => void;
    const sent = new Promise<void>((resolve) => (dispatched = resolve));
    const appended: string[] = [];
    const hot = {
      ...strata.deps.hot,
      adapter: strata.deps.hot.adapter,
      appendWindow: async (...args: Parameters<HotStore["appendWindow"]>) => {
        await sent;
        appended.push(...args[2].map((m) => m.content));
        return strata.deps.hot.appendWindow(...args);
      },
    };
    const queue = { ...strata.deps.queue, adapter: strata.deps.queue.adapter, readsOutbox: true, dispatch: async (jobs: Parameters<typeof strata.deps.queue.dispatch>[0]) => (dispatched(), strata.deps.queue.dispatch(jobs)) };
    const s = uid("s");
    const out = await Promise.race([
      ingestMessages({ ...strata.deps, hot, queue }, { tenantId: "default", sessionId: s, userId: "ann", messages: [say("side by side")] }),
      new Promise<null>((resolve) => setTimeout(() => resolve(null), 5000)),
    ]);
    expect(out?.messages[0]!.seq).toBe(1);
    expect(appended).toEqual(["side by side"]);

    // A queue that refuses the send: the write is still acknowledged and stored, and the window appended.
    const down = { ...queue, dispatch: async () => Promise.reject(new Error("queue down")) };
    const s2 = uid("s");
    const kept = await ingestMessages({ ...strata.deps, hot, queue: down }, { tenantId: "default", sessionId: s2, userId: "ann", messages: [say("kept")] });
    expect(kept.messages[0]!.seq).toBe(1);
    expect(appended).toEqual(["side by side", "kept"]);
    const [m] = await strata.deps.archive.getMessages("default", [kept.messages[0]!.id]);
    expect(m!.content).toBe("kept");
  });
});

describe("search", () => {
  it("keeps working, degraded, when one retriever fails", async () => {
    const user = uid("u");
    await ingestMessages(strata.deps, { tenantId: "default", sessionId: uid("s"), userId: user, messages: [say("The violin lessons start on Monday")] });
    await strata.idle();
    const failingVectors = { ...strata.deps.vectors, query: () => Promise.reject(new Error("vector tier down")) };
    const out = await hybridSearch({ ...strata.deps, vectors: failingVectors }, { tenantId: "default", userId: user, query: "violin lessons", limit: 5 });
    expect(out.degraded).toEqual(["vector"]);
    expect(out.hits[0]?.message.content).toBe("The violin lessons start on Monday");
    expect(out.hits[0]?.sources).not.toContain("vector");
  });

  it("never returns another user's messages", async () => {
    const a = uid("u");
    const b = uid("u");
    await ingestMessages(strata.deps, { tenantId: "default", sessionId: uid("s"), userId: a, messages: [say("secret recipe for lasagna")] });
    await ingestMessages(strata.deps, { tenantId: "default", sessionId: uid("s"), userId: b, messages: [say("nothing to see")] });
    await strata.idle();
    const out = await hybridSearch(strata.deps, { tenantId: "default", userId: b, query: "lasagna recipe", limit: 10 });
    expect(out.hits.every((h) => h.message.userId === b)).toBe(true);
  });
});

describe("context", () => {
  it("keeps the newest turns when the budget is small, and recalled items never repeat the window", async () => {
    const s = uid("s");
    const user = uid("u");
    const turns = Array.from({ length: 12 }, (_, i) => say(`Turn number ${i} mentions the blue bicycle repair`));
    await ingestMessages(strata.deps, { tenantId: "default", sessionId: s, userId: user, messages: turns });
    await strata.idle();
    const ctx = await assembleContext(strata.deps, { tenantId: "default", sessionId: s, query: "bicycle repair", budget: 120 });
    expect(ctx.tokens).toBeLessThanOrEqual(120);
    expect(ctx.recent.length).toBeGreaterThan(0);
    expect(ctx.recent[ctx.recent.length - 1]!.seq).toBe(12);
    const recentIds = new Set(ctx.recent.map((m) => m.id));
    expect(ctx.recalled.some((m) => recentIds.has(m.id))).toBe(false);
    // Window holds 6: older turns can only come back as recalled items.
    const big = await assembleContext(strata.deps, { tenantId: "default", sessionId: s, query: "bicycle repair", budget: 4000 });
    expect(big.recent.map((m) => m.seq)).toEqual([7, 8, 9, 10, 11, 12]);
    expect(big.recalled.map((m) => m.seq).sort((a, b) => a - b)).toEqual([1, 2, 3, 4, 5, 6]);
    expect(big.recalled.every((m) => m.sources!.length > 0 && m.score! > 0)).toBe(true);
  });

  it("uses the last user turn as the query when none is given", async () => {
    const s = uid("s");
    const user = uid("u");
    await ingestMessages(strata.deps, { tenantId: "default", sessionId: uid("s"), userId: user, messages: [say("My cat is called Biscuit")] });
    await ingestMessages(strata.deps, {
      tenantId: "default",
      sessionId: s,
      userId: user,
      messages: [say("hello"), say("x1"), say("x2"), say("x3"), say("x4"), say("x5"), say("What is my cat called?")],
    });
    await strata.idle();
    const ctx = await assembleContext(strata.deps, { tenantId: "default", sessionId: s, budget: 1000 });
    expect(ctx.recalled.map((m) => m.content)).toContain("My cat is called Biscuit");
  });

  it("queries a long last user turn by its rarest words, and still finds what it names", async () => {
    const s = uid("s");
    const user = uid("u");
    const filler = Array.from({ length: 60 }, (_, i) => `word${String.fromCharCode(97 + (i % 26))}${String.fromCharCode(97 + Math.floor(i / 26))}`);
    // Older turns: each common word in many of them, and one turn about the cat.
    const older = Array.from({ length: 30 }, (_, i) => say(filler.filter((_, k) => (k + i) % 3 === 0).join(" ")));
    await ingestMessages(strata.deps, { tenantId: "default", sessionId: uid("s"), userId: user, messages: [...older, say("My cat Biscuit needs a vet appointment")] });
    const ask = `${filler.join(" ")} and what about Biscuit at the vet?`;
    await ingestMessages(strata.deps, { tenantId: "default", sessionId: s, userId: user, messages: [say("x1"), say("x2"), say(ask)] });
    await strata.idle();
    // The graph store as it is, recording the terms each lookup is asked for.
    const asked: string[][] = [];
    const graph = strata.deps.graph;
    const deps = {
      ...strata.deps,
      graph: { ...graph, adapter: graph.adapter, messagesMentioning: (q: Parameters<typeof graph.messagesMentioning>[0]) => (asked.push(q.terms), graph.messagesMentioning(q)) },
    };
    const config = { ...DEFAULT_CONTEXT_CONFIG, implicitQuery: { maxWords: 8 } };
    const ctx = await assembleContext(deps, { tenantId: "default", sessionId: s, budget: 1000 }, config);
    expect(ctx.recalled.map((m) => m.content)).toContain("My cat Biscuit needs a vet appointment");
    expect(ctx.tokens).toBeLessThanOrEqual(1000);
    expect(asked[0]).toHaveLength(8);
    expect(asked[0]).toEqual(expect.arrayContaining(["biscuit", "vet"]));
    expect(ctx.timings.implicit_query).toBeGreaterThanOrEqual(0);
    // An explicit query is used as given, however long.
    const explicit = await assembleContext(deps, { tenantId: "default", sessionId: s, query: ask, budget: 1000 }, config);
    expect(asked[1]).toEqual(queryTerms(ask));
    expect(asked[1]!.length).toBeGreaterThan(60);
    expect(explicit.timings.implicit_query).toBeUndefined();
  });

  it("keeps the decisions and tasks a conversation states as memories, in the context, until the message is forgotten", async () => {
    const s = uid("s");
    const user = uid("u");
    const out = await ingestMessages(strata.deps, {
      tenantId: "default",
      sessionId: s,
      userId: user,
      messages: [say("We decided to hold the wedding in Porto."), say("I need to send the invitations by Friday."), say("Nice weather today.")],
    });
    await strata.idle();
    await strata.idle(); // a rerun of the same jobs would add nothing (ids derive from the message)
    const memories = await strata.deps.archive.listMemories("default", user, { limit: 10 });
    expect(memories.map((m) => [m.kind, m.content, m.sourceMessageId])).toEqual([
      ["decision", "We decided to hold the wedding in Porto.", out.messages[0]!.id],
      ["task", "I need to send the invitations by Friday.", out.messages[1]!.id],
    ]);
    const ctx = await assembleContext(strata.deps, { tenantId: "default", sessionId: s, query: "wedding", budget: 1000 });
    expect(ctx.memories.map((m) => m.kind)).toEqual(["decision", "task"]);
    expect(ctx.prompt).toContain("## Decisions and tasks\n- [decision] We decided to hold the wedding in Porto.");
    await forget(strata.deps, { tenantId: "default", scope: "message", id: out.messages[0]!.id });
    expect((await strata.deps.archive.listMemories("default", user, { limit: 10 })).map((m) => m.kind)).toEqual(["task"]);
  });

  it("assembles the same context from the archive's one-statement read as from its reads one by one", async () => {
    // Under the embedded read cache (which leaves readContext out) is the SQL archive, which has it.
    const direct = Object.getPrototypeOf(strata.deps.archive) as Archive;
    expect(strata.deps.archive.readContext).toBeUndefined();
    expect(direct.readContext).toBeTypeOf("function");
    const oneStatement = { ...strata.deps, archive: direct };
    const user = uid("u");
    const s = uid("s");
    const out = await ingestMessages(strata.deps, {
      tenantId: "default",
      sessionId: s,
      userId: user,
      messages: [say("We decided to paint the kitchen green."), say("I need to buy brushes by Sunday."), say("The paint shop is on Elm Street."), say("Where is the paint shop?")],
    });
    await strata.idle();
    await strata.deps.archive.saveSummary({ tenantId: "default", sessionId: s, userId: user, upToSeq: 2, content: "Kitchen painting plans.", tokens: 4 }, null);
    // Timings aside, and scores to 6 places: a session not stored yet ages its recalled turns from now.
    const strip = ({ timings, ...rest }: Awaited<ReturnType<typeof assembleContext>>) => {
      expect(timings.total).toBeGreaterThan(0);
      return JSON.parse(JSON.stringify(rest, (k, v) => (k === "score" ? Number(v.toFixed(6)) : v)));
    };
    for (const input of [
      { tenantId: "default", sessionId: s, budget: 1000 },
      { tenantId: "default", sessionId: s, userId: user, query: "paint shop", budget: 1000 },
      { tenantId: "default", sessionId: uid("s"), userId: user, query: "brushes", budget: 1000 },
    ]) {
      await assembleContext(strata.deps, input); // repairs the hot window where the archive answered it
      const expected = strip(await assembleContext(strata.deps, input));
      const got = strip(await assembleContext(oneStatement, input));
      expect(got).toEqual(expected);
    }
    const ctx = await assembleContext(oneStatement, { tenantId: "default", sessionId: s, budget: 1000 });
    expect(ctx.summary?.content).toBe("Kitchen painting plans.");
    expect(ctx.memories.map((m) => m.sourceMessageId)).toEqual([out.messages[0]!.id, out.messages[1]!.id]);
    // The same refusals.
    await expect(assembleContext(oneStatement, { tenantId: "default", sessionId: s, userId: "someone else", budget: 500 })).rejects.toMatchObject({ code: "SESSION_USER_MISMATCH" });
    await expect(assembleContext(oneStatement, { tenantId: "default", sessionId: uid("s"), budget: 500 })).rejects.toMatchObject({ code: "SESSION_NOT_FOUND" });
  });

  it("starts the vector query beside the first reads when the caller names the query and the user, with the same answer", async () => {
    const direct = Object.getPrototypeOf(strata.deps.archive) as Archive;
    const user = uid("u");
    const s = uid("s");
    // What is recalled comes from an earlier session: the current one fits in the recent window.
    await ingestMessages(strata.deps, {
      tenantId: "default",
      sessionId: uid("s"),
      userId: user,
      messages: [say("The ferry to the island leaves at nine."), say("Bring the red kayak and two paddles."), say("Lunch is at the harbour cafe.")],
    });
    await ingestMessages(strata.deps, { tenantId: "default", sessionId: s, userId: user, messages: [say("What time is the ferry?")] });
    await strata.idle();
    // The session read waits until the vector query has begun (or 2 s, and says so): the
    // call finishes only because that query starts before the read answers.
    const events: string[] = [];
    let vectorStarted!: () => void;
    const vectorBegun = new Promise<void>((resolve) => (vectorStarted = resolve));
    const gated: Archive = Object.create(direct);
    gated.readContext = async (...args) => {
      events.push("readContext");
      const waited = await Promise.race([vectorBegun.then(() => "vector first"), new Promise<string>((r) => setTimeout(() => r("timed out"), 2000))]);
      events.push(waited);
      return direct.readContext!.apply(strata.deps.archive, args);
    };
    const vectors = Object.create(strata.deps.vectors) as typeof strata.deps.vectors;
    let failVectors = false;
    vectors.query = async (q) => {
      events.push("vectors.query");
      vectorStarted();
      if (failVectors) throw new Error("vector tier down");
      return strata.deps.vectors.query(q);
    };
    const early = { ...strata.deps, archive: gated, vectors };
    const late = { ...strata.deps, archive: direct };
    const input = { tenantId: "default", sessionId: s, userId: user, query: "ferry time", budget: 1000 };
    const strip = ({ timings, ...rest }: Awaited<ReturnType<typeof assembleContext>>) => {
      expect(timings.vector).toBeGreaterThanOrEqual(0);
      return rest;
    };
    await assembleContext(late, input); // repairs the hot window where the archive answered it
    const got = await assembleContext(early, input);
    expect(events).toEqual(["readContext", "vectors.query", "vector first"]);
    expect(got.recalled.length).toBeGreaterThan(0);
    expect(strip(got)).toEqual(strip(await assembleContext(late, input)));

    // Without a named user (or query) it waits for the session as before: one query, after the read.
    events.length = 0;
    await assembleContext({ ...early, archive: Object.assign(Object.create(direct), { readContext: direct.readContext }) }, { ...input, userId: undefined });
    expect(events).toEqual(["vectors.query"]);

    // A vector query that fails early degrades the tier and nothing else.
    failVectors = true;
    events.length = 0;
    const degraded = await assembleContext(early, input);
    expect(degraded.degraded).toEqual(["vector"]);
    expect(degraded.recent.map((m) => m.content)).toEqual(got.recent.map((m) => m.content));
    // A session of another user is refused, with the query it started discarded.
    failVectors = false;
    await expect(assembleContext(early, { ...input, userId: "someone else" })).rejects.toMatchObject({ code: "SESSION_USER_MISMATCH" });
  });

  it("renders summary and facts before recalled and recent turns", () => {
    const m = { createdAt: "2024-01-02T03:04:05.000Z", seq: 1, name: "Ann", role: "user" as const, content: "hi" };
    const prompt = renderPrompt({
      summary: "S",
      facts: [{ subject: "Ann", predicate: "live_in", object: "Oslo", weight: 1, messageIds: [] }],
      recalled: [m as never],
      recent: [m as never],
    });
    expect(prompt).toBe(
      "## Summary of the conversation so far\nS\n\n## Known facts\n- Ann live in Oslo\n\n## Relevant earlier messages\n[2024-01-02]\nAnn: hi\n\n## Recent messages\n[2024-01-02]\nAnn: hi",
    );
  });

  it("opens each day's turns with one date line in the by-day layout, and dates every line in the timestamped one", () => {
    const at = (createdAt: string, content: string) => ({ createdAt, seq: 1, name: "Ann", role: "user" as const, content }) as never;
    const recent = [at("2024-01-02T09:00:00.000Z", "a"), at("2024-01-02T10:00:00.000Z", "b"), at("2024-01-03T08:00:00.000Z", "c")];
    expect(renderPrompt({ summary: null, facts: [], recalled: [], recent }, "by-day")).toBe("## Recent messages\n[2024-01-02]\nAnn: a\nAnn: b\n[2024-01-03]\nAnn: c");
    expect(renderPrompt({ summary: null, facts: [], recalled: [], recent }, "timestamped")).toBe(
      "## Recent messages\n[2024-01-02 09:00] Ann: a\n[2024-01-02 10:00] Ann: b\n[2024-01-03 08:00] Ann: c",
    );
  });
});

describe("context: provenance, prefix, recency and budget", () => {
  const user = uid("u");
  const older = uid("s");
  const current = uid("s");
  const at = (day: number) => new Date(Date.UTC(2024, 2, day, 12)).toISOString();
  beforeAll(async () => {
    await ingestMessages(strata.deps, {
      tenantId: "default",
      sessionId: older,
      userId: user,
      messages: [
        { ...say("Maria moved to Lisbon and works at Globex."), createdAt: at(1) },
        { ...say("Did she like the kayak trip on the Tagus?", "Bo"), createdAt: at(1) },
        { ...say("She loved the kayak trip, she wants to go again."), createdAt: at(1) },
        { ...say("We decided to visit Maria in Lisbon in June."), createdAt: at(2) },
        { ...say("I need to book the flights to Lisbon."), createdAt: at(2) },
      ],
    });
    await ingestMessages(strata.deps, {
      tenantId: "default",
      sessionId: current,
      userId: user,
      messages: ["hello", "how are you", "fine thanks", "what's new", "not much", "tell me about the trip"].map((c, i) => ({ ...say(c, i % 2 ? "Bo" : "Ann"), createdAt: at(20) })),
    });
    await strata.idle();
  });

  it("gives every item its tier, a score and why it was chosen", async () => {
    // The first read of a session's window comes from the archive (the hot tier only appends
    // to windows it holds) and fills the hot tier; the next one is served from it.
    const first = await assembleContext(strata.deps, { tenantId: "default", sessionId: current, query: "Where did Maria go kayaking?", budget: 1500 });
    for (const m of first.recent) expect([m.tier, m.score, m.why]).toEqual(["archive", 1, ["recent window"]]);
    await new Promise((r) => setTimeout(r, 10)); // the hot window is repaired in the background
    const ctx = await assembleContext(strata.deps, { tenantId: "default", sessionId: current, query: "Where did Maria go kayaking?", budget: 1500 });
    expect(ctx.recent.length).toBeGreaterThan(0);
    for (const m of ctx.recent) expect([m.tier, m.score, m.why]).toEqual(["hot", 1, ["recent window"]]);
    expect(ctx.recalled.length).toBeGreaterThan(0);
    for (const m of ctx.recalled) {
      expect(["keyword", "vectors", "graph"]).toContain(m.tier);
      expect(m.score).toBeGreaterThan(0);
      expect(m.why.length).toBeGreaterThan(0);
    }
    const kayak = ctx.recalled.find((m) => m.content.startsWith("Did she like the kayak"))!;
    expect(kayak.why).toContain("keyword");
    // The reply after the matched question comes in as its answer.
    const reply = ctx.recalled.find((m) => m.content.startsWith("She loved the kayak"))!;
    expect(reply.why.some((w) => w === `answer to ${kayak.id}` || w === "keyword")).toBe(true);
    expect(ctx.facts.length).toBeGreaterThan(0);
    for (const f of ctx.facts) {
      expect(f.tier).toBe("graph");
      expect(f.score).toBe(f.weight);
      expect(f.why.length).toBeGreaterThan(0);
    }
    expect(ctx.facts.some((f) => f.why.includes("names maria"))).toBe(true);
    expect(ctx.memories.map((m) => [m.kind, m.tier, m.why])).toEqual([
      ["decision", "archive", ["decision", `priority ${ctx.memories[0]!.priority}`]],
      ["task", "archive", ["task", `priority ${ctx.memories[1]!.priority}`]],
    ]);
  });

  it("keeps the prompt's prefix (summary, strongest facts, decisions and tasks) the same whatever the query", async () => {
    const a = await assembleContext(strata.deps, { tenantId: "default", sessionId: current, query: "Where did Maria go kayaking?", budget: 1200 });
    const b = await assembleContext(strata.deps, { tenantId: "default", sessionId: current, query: "flights", budget: 1200 });
    expect(a.stablePrefixChars).toBeGreaterThan(0);
    expect(a.prompt.slice(0, a.stablePrefixChars)).toBe(b.prompt.slice(0, b.stablePrefixChars));
    expect(a.prompt.slice(0, a.stablePrefixChars)).toContain("## Known facts");
    expect(a.prompt.slice(0, a.stablePrefixChars)).toContain("## Decisions and tasks");
    expect(a.prompt.slice(a.stablePrefixChars)).not.toContain("## Decisions and tasks");
    // Query-specific parts follow the prefix.
    expect(a.prompt.indexOf("## Relevant earlier messages")).toBeGreaterThan(a.stablePrefixChars);
  });

  it("never repeats a turn of the recent window among recalled ones, and never goes over budget", async () => {
    for (const budget of [20, 45, 80, 130, 200, 350, 600, 1000, 2000]) {
      const ctx = await assembleContext(strata.deps, { tenantId: "default", sessionId: current, query: "tell me about the trip to Lisbon", budget });
      expect(ctx.tokens).toBeLessThanOrEqual(budget);
      expect(ctx.tokens).toBe(strata.deps.tokenizer.count(ctx.prompt));
      const recentIds = new Set(ctx.recent.map((m) => m.id));
      expect(ctx.recalled.filter((m) => recentIds.has(m.id))).toEqual([]);
    }
  });
});

describe("recallLimit", () => {
  const shares = { summary: 0.15, facts: 0.1, recent: 0.35 };
  const turns = (n: number, tokens: number) => Array.from({ length: n }, () => ({ tokens }));
  const recall = { min: 40, tokensPer: 40, fill: 1.5 };

  it("asks one candidate per tokensPer tokens of budget, at least min and at most 100, without a window or a fill", () => {
    expect(recallLimit(1000, recall, shares)).toBe(40);
    expect(recallLimit(3000, recall, shares)).toBe(75);
    expect(recallLimit(8000, recall, shares)).toBe(100);
    expect(recallLimit(3000, { ...recall, fill: 0 }, shares, turns(10, 200))).toBe(75);
  });

  it("asks fill times the turns the room holds, by the window's mean turn, within the same bounds", () => {
    // Room: 4000 × 0.75 − 20 × 100 (the window under its 35% share) = 1000 tokens, turns of
    // 100 + 4 tokens: 9.6 fit, 1.5 × that is 15, below min.
    expect(recallLimit(4000, recall, shares, turns(20, 100))).toBe(40);
    // Room: 4000 × 0.75 − 10 × 20 = 2800, turns of 24 tokens: 1.5 × 116.7 → capped by the budget's 100.
    expect(recallLimit(4000, recall, shares, turns(10, 20))).toBe(100);
    // Room: 8000 × 0.75 − 10 × 60 = 5400, turns of 64 tokens: ceil(1.5 × 84.375) = 127 → 100;
    // with fill 0.5, 43.
    expect(recallLimit(8000, { ...recall, fill: 0.5 }, shares, turns(10, 60))).toBe(43);
    // A window over its share counts only its share: 4000 × 0.75 − 1400 = 1600, 1.5 × 1600 / 204 → 12 → min.
    expect(recallLimit(4000, { ...recall, min: 1 }, shares, turns(50, 200))).toBe(12);
  });
});

describe("implicitQuery", () => {
  const corpus = new Bm25Corpus();
  const add = (id: string, content: string) => corpus.add({ id, sessionId: "s", seq: corpus.size + 1, name: null, createdAt: corpus.size }, content);
  for (let i = 0; i < 10; i++) add(`common${i}`, `deploy failed again on the build server ${i % 2 ? "yesterday" : "today"} port 8080`);
  add("rare1", "the flaky migration script");
  add("rare2", "the flaky migration script broke staging");
  add("turn", "deploy failed on the build server today, port 8080, the flaky migration script, and zebra");

  it("keeps the words fewest other turns hold, in the turn's order, numbers last", () => {
    const turn = { id: "turn", content: "deploy failed on the build server today, port 8080, the flaky migration script, and zebra" };
    // "zebra" only the turn itself holds: it can find nothing else.
    expect(implicitQuery(turn, corpus, 3)).toBe("flaky migration script");
    expect(implicitQuery(turn, corpus, 4)).toBe("today flaky migration script");
    expect(implicitQuery(turn, corpus, 9)).toBe("deploy failed build server today port flaky migration script");
    expect(implicitQuery(turn, corpus, 10)).toBe("deploy failed build server today port 8080 flaky migration script");
  });

  it("leaves a short turn, or one with no corpus to weigh it by, as it is", () => {
    const turn = { id: "turn", content: "deploy failed on the build server today, port 8080, the flaky migration script, and zebra" };
    expect(implicitQuery(turn, corpus, 11)).toBe(turn.content);
    expect(implicitQuery(turn, null, 3)).toBe(turn.content);
    expect(implicitQuery(turn, corpus, 0)).toBe(turn.content);
  });
});

describe("rankRecalled", () => {
  const hit = (id: string, day: number, score: number): SearchHit => ({
    message: { id, createdAt: new Date(Date.UTC(2024, 0, day)).toISOString() } as Message,
    score,
    sources: ["keyword"],
    why: ["keyword"],
  });
  const now = Date.UTC(2024, 1, 1);
  const { recency, priority } = DEFAULT_CONTEXT_CONFIG;

  it("puts the newer of two equally relevant turns first", () => {
    const out = rankRecalled([hit("old", 1, 0.5), hit("new", 25, 0.5)], { now, recency, priority });
    expect(out.map((h) => h.message.id)).toEqual(["new", "old"]);
    expect(out[0]!.relevance).toBe(0.5);
  });

  it("keeps a much more relevant old turn above a weak new one, and the search order when off", () => {
    expect(rankRecalled([hit("old", 1, 0.5), hit("new", 25, 0.3)], { now, recency, priority }).map((h) => h.message.id)).toEqual(["old", "new"]);
    const off = { weight: 0, halfLifeDays: 30 };
    expect(rankRecalled([hit("old", 1, 0.5), hit("new", 25, 0.5)], { now, recency: off, priority }).map((h) => h.message.id)).toEqual(["old", "new"]);
  });

  it("lifts a turn that stated a memory by its priority, and says so", () => {
    const out = rankRecalled([hit("a", 10, 0.5), hit("b", 10, 0.5)], { now, recency, priority, priorities: new Map([["b", 8]]) });
    expect(out.map((h) => h.message.id)).toEqual(["b", "a"]);
    expect(out[0]!.why).toEqual(["keyword", "states a memory (priority 8)"]);
  });
});
