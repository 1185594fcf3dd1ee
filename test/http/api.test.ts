// HTTP API v1 through app.request(), over the embedded tiers: the contract clients and the
// evaluation script rely on, and every bad-input case the ingest path must refuse without
// storing anything.

import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Strata } from "../../lib/runtime.ts";
import { uid } from "../fixtures/pglite.ts";
import { call, startTestStrata } from "../fixtures/strata.ts";

let strata: Strata;
beforeAll(async () => {
  strata = await startTestStrata();
});
afterAll(async () => {
  await strata?.close();
});

const post = (path: string, body: unknown) => call(strata, "POST", path, body);
const get = (path: string) => call(strata, "GET", path);

const conversation = [
  { role: "user", name: "Caroline", content: "I went to the LGBTQ support group yesterday and it was so powerful." },
  { role: "assistant", name: "Melanie", content: "That sounds amazing! What happened at the support group?" },
  { role: "user", name: "Caroline", content: "People shared their transgender stories. I felt accepted and inspired." },
  { role: "assistant", name: "Melanie", content: "I painted a sunrise over the lake last week, it is my favourite painting." },
  { role: "user", name: "Caroline", content: "I'm thinking about a career in counseling and mental health." },
  { role: "assistant", name: "Melanie", content: "You'd be great at it. I'm off camping with the kids in Colorado next month." },
];

async function historyCount(sessionId: string): Promise<number> {
  const r = await get(`/v1/sessions/${sessionId}/messages?limit=1000`);
  return r.status === 404 ? 0 : r.body.messages.length;
}

describe("ingest and history", () => {
  it("stores messages, keeps client ids and answers seq numbers", async () => {
    const s = uid("s");
    const ids = conversation.map((_, i) => `${s}/D1:${i + 1}`);
    const r = await post(`/v1/sessions/${s}/messages`, {
      userId: "alice",
      messages: conversation.map((m, i) => ({ ...m, id: ids[i], createdAt: `2023-05-08T13:${10 + i}:00Z` })),
    });
    expect(r.status).toBe(201);
    expect(r.body.messages).toEqual(ids.map((id, i) => ({ id, seq: i + 1 })));

    const again = await post(`/v1/sessions/${s}/messages`, { userId: "alice", messages: [{ ...conversation[0], id: ids[0] }] });
    expect(again.status).toBe(201);
    expect(again.body.messages).toEqual([{ id: ids[0], seq: 1 }]);
    expect(await historyCount(s)).toBe(6);

    const page = await get(`/v1/sessions/${s}/messages?limit=2&before=5`);
    expect(page.status).toBe(200);
    expect(page.body.messages.map((m: { seq: number }) => m.seq)).toEqual([3, 4]);
    expect(page.body.hasMore).toBe(true);
    expect(page.body.messages[0]).toMatchObject({ id: ids[2], role: "user", name: "Caroline", createdAt: "2023-05-08T13:12:00.000Z" });
    const after = await get(`/v1/sessions/${s}/messages?limit=10&after=4`);
    expect(after.body.messages.map((m: { seq: number }) => m.seq)).toEqual([5, 6]);
    expect(after.body.hasMore).toBe(false);
  });

  it("generates ids when none are given", async () => {
    const s = uid("s");
    const r = await post(`/v1/sessions/${s}/messages`, { userId: "alice", messages: [{ role: "user", content: "hi" }, { role: "assistant", content: "hello" }] });
    expect(r.status).toBe(201);
    expect(r.body.messages.map((m: { seq: number }) => m.seq)).toEqual([1, 2]);
    expect(new Set(r.body.messages.map((m: { id: string }) => m.id)).size).toBe(2);
  });

  it("commits single-message posts that arrive together as one transaction, in the order they came", async () => {
    const s = uid("s");
    const userId = uid("alice");
    // The user's version, read from the archive under the read cache (which hides readContext).
    const archive = Object.getPrototypeOf(strata.deps.archive) as typeof strata.deps.archive;
    const version = async () => (await archive.readContext!("default", uid("s"), { userId, memoryLimit: 0 })).userVersion?.messagesVersion ?? 0;
    const posts = conversation.map((m, i) => post(`/v1/sessions/${s}/messages`, { userId, messages: [{ ...m, id: `${s}:${i}` }] }));
    const answers = await Promise.all(posts);
    expect(answers.map((r) => r.status)).toEqual(conversation.map(() => 201));
    expect(answers.map((r) => r.body.messages)).toEqual(conversation.map((_, i) => [{ id: `${s}:${i}`, seq: i + 1 }]));
    // Each commit bumps the user's version once. The first post's ingest waited for the handlers
    // of the five behind it to start (one per turn, lib/http/turns.ts): one commit for all six.
    expect(await version()).toBe(1);
    const stored = await get(`/v1/sessions/${s}/messages?limit=10`);
    expect(stored.body.messages.map((m: { content: string }) => m.content)).toEqual(conversation.map((m) => m.content));
  });

  it("answers 404 for the history of an unknown session", async () => {
    const r = await get(`/v1/sessions/${uid("nope")}/messages`);
    expect(r.status).toBe(404);
    expect(r.body.error.code).toBe("SESSION_NOT_FOUND");
  });
});

describe("bad input gets a 4xx naming the problem and stores nothing", () => {
  const ok = { role: "user", content: "fine" };
  const cases: [string, unknown, number, string, RegExp][] = [
    ["wrong type for userId", { userId: 42, messages: [ok] }, 400, "INVALID_REQUEST", /userId/],
    ["wrong type for content", { userId: "u", messages: [ok, { role: "user", content: 7 }] }, 400, "INVALID_REQUEST", /messages\[1\]\.content/],
    ["messages not an array", { userId: "u", messages: "hello" }, 400, "INVALID_REQUEST", /messages/],
    ["no messages", { userId: "u", messages: [] }, 400, "INVALID_REQUEST", /at least one/],
    ["empty content", { userId: "u", messages: [ok, { role: "user", content: "   " }] }, 400, "INVALID_REQUEST", /messages\[1\]\.content: content must not be empty/],
    ["content over 64 KiB", { userId: "u", messages: [ok, { role: "user", content: "é".repeat(40_000) }] }, 413, "CONTENT_TOO_LARGE", /messages\[1\]\.content.*64 KiB/],
    ["more than 500 messages", { userId: "u", messages: Array.from({ length: 501 }, () => ok) }, 413, "TOO_MANY_MESSAGES", /at most 500/],
    ["unknown role", { userId: "u", messages: [{ role: "robot", content: "beep" }] }, 400, "INVALID_REQUEST", /messages\[0\]\.role: role must be one of user, assistant, system, tool/],
    ["bad createdAt", { userId: "u", messages: [{ ...ok, createdAt: "yesterday" }] }, 400, "INVALID_REQUEST", /createdAt/],
    ["id too long", { userId: "u", messages: [{ ...ok, id: "x".repeat(129) }] }, 400, "INVALID_REQUEST", /messages\[0\]\.id.*128/],
    ["missing userId", { messages: [ok] }, 400, "INVALID_REQUEST", /userId/],
  ];
  for (const [title, body, status, code, pattern] of cases) {
    it(title, async () => {
      const s = uid("s");
      const r = await post(`/v1/sessions/${s}/messages`, body);
      expect(r.status).toBe(status);
      expect(r.body.error.code).toBe(code);
      expect(r.body.error.message).toMatch(pattern);
      expect(await historyCount(s)).toBe(0);
    });
  }

  it("invalid JSON", async () => {
    const s = uid("s");
    const r = await call(strata, "POST", `/v1/sessions/${s}/messages`, '{"userId": "u", "messages": [');
    expect(r.status).toBe(400);
    expect(r.body.error).toEqual({ code: "INVALID_JSON", message: "request body is not valid JSON" });
    expect(await historyCount(s)).toBe(0);
  });

  it("an id reused with different content: 409, and nothing of the request stored", async () => {
    const s = uid("s");
    const id = uid("m");
    expect((await post(`/v1/sessions/${s}/messages`, { userId: "u", messages: [{ id, role: "user", content: "original" }] })).status).toBe(201);
    const fresh = uid("m");
    const r = await post(`/v1/sessions/${s}/messages`, {
      userId: "u",
      messages: [
        { id: fresh, role: "user", content: "new" },
        { id, role: "user", content: "rewritten" },
      ],
    });
    expect(r.status).toBe(409);
    expect(r.body.error.code).toBe("MESSAGE_ID_CONFLICT");
    expect(r.body.error.message).toContain(id);
    const history = await get(`/v1/sessions/${s}/messages`);
    expect(history.body.messages.map((m: { id: string; content: string }) => [m.id, m.content])).toEqual([[id, "original"]]);
  });

  it("a session of another user: 409", async () => {
    const s = uid("s");
    await post(`/v1/sessions/${s}/messages`, { userId: "owner", messages: [ok] });
    const r = await post(`/v1/sessions/${s}/messages`, { userId: "intruder", messages: [ok] });
    expect(r.status).toBe(409);
    expect(r.body.error.code).toBe("SESSION_USER_MISMATCH");
    expect(await historyCount(s)).toBe(1);
  });

  it("bad search and context parameters", async () => {
    expect((await post("/v1/search", { userId: "u", query: "" })).body.error.message).toMatch(/query/);
    expect((await post("/v1/search", { userId: "u", query: "x", limit: 101 })).status).toBe(400);
    expect((await post("/v1/search", { userId: "u", query: "x", limit: 2.5 })).body.error.message).toMatch(/limit/);
    const r = await get(`/v1/sessions/${uid("s")}/context?userId=u&budget=abc`);
    expect(r.status).toBe(400);
    expect(r.body.error.message).toMatch(/budget/);
    expect((await get(`/v1/sessions/${uid("s")}/messages?limit=0`)).status).toBe(400);
  });

  it("unknown routes answer a JSON 404", async () => {
    const r = await get("/v1/nothing-here");
    expect(r.status).toBe(404);
    expect(r.body.error.code).toBe("NOT_FOUND");
  });
});

describe("search, context and status once derived tiers caught up", () => {
  const user = uid("user");
  const s1 = uid("s");
  const s2 = uid("s");
  beforeAll(async () => {
    await post(`/v1/sessions/${s1}/messages`, {
      userId: user,
      messages: conversation.map((m, i) => ({ ...m, id: `${s1}/${i + 1}`, createdAt: `2023-05-08T13:${10 + i}:00Z` })),
    });
    await post(`/v1/sessions/${s2}/messages`, {
      userId: user,
      messages: [
        { id: `${s2}/1`, role: "user", name: "Caroline", content: "Good morning! How was the weekend?", createdAt: "2023-06-01T09:00:00Z" },
        { id: `${s2}/2`, role: "assistant", name: "Melanie", content: "Lovely, we baked bread.", createdAt: "2023-06-01T09:01:00Z" },
      ],
    });
    await post(`/v1/sessions/${uid("s")}/messages`, { userId: uid("other"), messages: [{ role: "user", content: "My own support group is private." }] });
    await strata.idle();
  });

  it("status shows no pending work once the runner is idle", async () => {
    const r = await get("/v1/status");
    expect(r.status).toBe(200);
    expect(r.body.queue).toMatchObject({ pending: 0, failed: 0, inFlight: 0, oldestPendingAgeMs: null });
    expect(r.body.summaries).toEqual({ due: 0 });
    expect(r.body.indexes).toEqual({ building: 0 });
  });

  it("search finds a user's turns by keyword and meaning, best first, with sources", async () => {
    const r = await post("/v1/search", { userId: user, query: "What did Caroline go to yesterday? A support group?", limit: 5 });
    expect(r.status).toBe(200);
    expect(r.body.results.length).toBeGreaterThan(0);
    expect(r.body.results.length).toBeLessThanOrEqual(5);
    // In a six-turn session every turn neighbours the hit, and the reply to "What happened at
    // the support group?" gets the answer-after-question lift: the evidence is in the top 3.
    const evidence = r.body.results.findIndex((x: { id: string }) => x.id === `${s1}/1`);
    expect(evidence).toBeGreaterThanOrEqual(0);
    expect(evidence).toBeLessThan(3);
    expect(r.body.results[evidence].sources).toEqual(expect.arrayContaining(["keyword", "vector"]));
    const scores = r.body.results.map((x: { score: number }) => x.score);
    expect([...scores].sort((a, b) => b - a)).toEqual(scores);
    expect(r.body.results.every((x: { id: string }) => x.id.startsWith(s1) || x.id.startsWith(s2))).toBe(true);
    expect(r.headers.get("server-timing")).toMatch(/keyword;dur=/);
  });

  it("search can be limited to one session", async () => {
    const r = await post("/v1/search", { userId: user, query: "weekend bread", sessionId: s2 });
    expect(r.body.results.map((x: { id: string }) => x.id)).toContain(`${s2}/2`);
    expect(r.body.results.every((x: { sessionId: string }) => x.sessionId === s2)).toBe(true);
  });

  it("context packs recent, recalled and facts within the budget, without repeating the recent window", async () => {
    const r = await get(`/v1/sessions/${s2}/context?userId=${user}&query=${encodeURIComponent("What did Melanie paint?")}&budget=400`);
    expect(r.status).toBe(200);
    expect(r.body.tokens).toBeLessThanOrEqual(400);
    expect(r.body.recent.map((m: { id: string }) => m.id)).toEqual([`${s2}/1`, `${s2}/2`]);
    const recalledIds = r.body.recalled.map((m: { id: string }) => m.id);
    expect(recalledIds).toContain(`${s1}/4`);
    expect(recalledIds).not.toContain(`${s2}/1`);
    expect(r.body.recalled[0]).toMatchObject({ sources: expect.any(Array), score: expect.any(Number) });
    expect(r.body.prompt).toContain("I painted a sunrise");
    expect(r.body.prompt.indexOf("## Relevant earlier messages")).toBeLessThan(r.body.prompt.indexOf("## Recent messages"));
    expect(r.body.degraded).toEqual([]);
    expect(r.headers.get("server-timing")).toMatch(/hot;dur=/);
  });

  it("context never exceeds a tiny budget", async () => {
    for (const budget of [1, 10, 30, 75]) {
      const r = await get(`/v1/sessions/${s1}/context?query=support&budget=${budget}`);
      expect(r.status).toBe(200);
      expect(r.body.tokens).toBeLessThanOrEqual(budget);
    }
  });

  it("context of an unknown session needs a userId", async () => {
    const r = await get(`/v1/sessions/${uid("s")}/context`);
    expect(r.status).toBe(404);
    const withUser = await get(`/v1/sessions/${uid("s")}/context?userId=${user}&query=painting`);
    expect(withUser.status).toBe(200);
    expect(withUser.body.recent).toEqual([]);
    expect(withUser.body.recalled.map((m: { id: string }) => m.id)).toContain(`${s1}/4`);
  });

  it("health names every tier's adapter", async () => {
    const r = await get("/v1/health");
    expect(r.status).toBe(200);
    const tiers = Object.fromEntries(r.body.tiers.map((t: { tier: string; adapter: string }) => [t.tier, t.adapter]));
    expect(tiers).toMatchObject({ archive: "pglite", hot: expect.any(String), vectors: expect.any(String), graph: expect.any(String), queue: "local-queue" });
    expect(r.body.tiers.every((t: { status: string }) => t.status === "ok")).toBe(true);
  });

  it("openapi.json documents every route", async () => {
    const r = await get("/openapi.json");
    expect(r.status).toBe(200);
    expect(Object.keys(r.body.paths).sort()).toEqual(
      [
        "/v1/health",
        "/v1/search",
        "/v1/sessions/{sessionId}/context",
        "/v1/sessions/{sessionId}/messages",
        "/v1/status",
        "/v1/messages/{messageId}",
        "/v1/sessions/{sessionId}",
        "/v1/users/{userId}",
        "/v1/forget/{receipt}",
      ].sort(),
    );
    expect(Object.keys(r.body.paths["/v1/sessions/{sessionId}/messages"]).sort()).toEqual(["get", "post"]);
    expect(r.body.components.schemas.IngestRequest).toBeDefined();
  });
});
