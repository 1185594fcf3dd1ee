import { describe, expect, it } from "vitest";
import { findCommitments } from "./commitments.ts";

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
