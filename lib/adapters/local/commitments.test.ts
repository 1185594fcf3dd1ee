import { describe, expect, it } from "vitest";
import { generateMessages } from "../../../bench/peers/data.ts";
import { findCommitments, statesCommitment } from "./commitments.ts";

describe("findCommitments", () => {
  it("finds decisions", () => {
    expect(findCommitments("After a long talk we decided to move to Denver next spring.")).toEqual([
      { kind: "decision", text: "After a long talk we decided to move to Denver next spring." },
    ]);
    expect(findCommitments("OK. Let's go with Postgres for the archive.")[0]?.kind).toBe("decision");
    expect(findCommitments("Decision: the launch slips to May.")[0]?.kind).toBe("decision");
  });

  it("finds tasks", () => {
    expect(findCommitments("I need to renew my passport before the trip.")).toEqual([{ kind: "task", text: "I need to renew my passport before the trip." }]);
    expect(findCommitments("Remind me to call the vet on Monday!")[0]?.kind).toBe("task");
    expect(findCommitments("TODO: write the migration tests")[0]?.kind).toBe("task");
  });

  it("ignores questions, conditionals and small talk", () => {
    expect(findCommitments("Do we need to book the hotel?")).toEqual([]);
    expect(findCommitments("If we decided to go, it would be fun.")).toEqual([]);
    expect(findCommitments("Hey! How was your weekend? The weather was lovely.")).toEqual([]);
    expect(findCommitments("")).toEqual([]);
  });

  it("splits sentences and keeps one entry per statement", () => {
    const out = findCommitments("We agreed on the blue paint. I have to buy brushes. I have to buy brushes.");
    expect(out.map((s) => s.kind)).toEqual(["decision", "task"]);
  });
});

describe("statesCommitment", () => {
  it("says whether findCommitments finds any, on the examples above and on the benchmark sessions' sentences", () => {
    const texts = [
      "After a long talk we decided to move to Denver next spring.",
      "OK. Let's go with Postgres for the archive.",
      "Decision: the launch slips to May.",
      "Remind me to call the vet on Monday!",
      "TODO: write the migration tests",
      "Do we need to book the hotel?",
      "If we decided to go, it would be fun.",
      "",
      "short",
      "We agreed on the blue paint. I have to buy brushes.",
      "we'll go with the red one",
      "Can you please remind Dana tomorrow",
      "Don't let me forget to pay the rent.",
      "I've got to run to the store.",
      "Our plan is to ship in June.",
      "I chose the pine table.",
      "Action item: update the docs",
      "Maybe we decided to wait, I don't know.",
      ...generateMessages({ seed: 4, count: 2_000, profile: "chat", prefix: "s" }).map((m) => m.content),
      ...generateMessages({ seed: 5, count: 200, profile: "coding", prefix: "c" }).map((m) => m.content),
    ];
    let found = 0;
    for (const t of texts) {
      const want = findCommitments(t).length > 0;
      found += want ? 1 : 0;
      expect(statesCommitment(t)).toBe(want);
    }
    expect(found).toBe(13);
  });
});
