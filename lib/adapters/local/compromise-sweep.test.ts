import nlp from "compromise";
import { describe, expect, it } from "vitest";
import { generateMessages, rehydrationSession } from "../../../bench/peers/data.ts";
import { installFastSweep, skipChunker } from "./compromise-sweep.ts";

// Everything the extractor reads of a parse: every term's tags, normal form and root, and the
// named-entity views with their pointers.
function parse(text: string): unknown {
  const doc = nlp(text);
  doc.compute("root");
  const terms = (doc as unknown as { docs: { text: string; normal: string; root?: string; tags: Set<string> }[][] }).docs.map((s) =>
    s.map((t) => [t.text, t.normal, t.root ?? null, [...t.tags].sort()]),
  );
  // Sentence, start and end of each match (the pointer's term ids differ from parse to parse).
  const views = [doc.people(), doc.places(), doc.organizations()].map((v) => (v as unknown as { fullPointer: unknown[][] }).fullPointer.map((p) => p.slice(0, 3)));
  return { terms, views };
}

const texts = [
  "Caroline went to Sweden last week with her sister Anna. She loved the museums in Stockholm.",
  "I didn't go to the LGBTQ support group yesterday, but Melanie painted a sunrise at the lake on 5 May 2023.",
  "We decided to move the flushBatch retry into queue-worker.ts; Dr. John Smith's team at Google will review it next Friday.",
  ...generateMessages({ seed: 7, count: 60, profile: "chat", prefix: "t" }).map((m) => m.content),
  ...rehydrationSession().slice(0, 40).map((m) => m.content),
];

describe("installFastSweep", () => {
  it("tags, roots and named entities stay exactly those of compromise's own sweep, while the sweep sees far fewer hooks", () => {
    const before = texts.map(parse);
    const methods = (nlp as unknown as { methods(): { one: { bulkMatch: (d: unknown, net: { hooks: object }, ...rest: unknown[]) => unknown } } }).methods();
    // Record the hooks each sweep is handed, below the fast front.
    const original = methods.one.bulkMatch;
    const handed: number[] = [];
    methods.one.bulkMatch = (d, net, ...rest) => {
      handed.push(Object.keys(net.hooks).length);
      return original(d, net, ...rest);
    };
    installFastSweep(nlp);
    installFastSweep(nlp); // a second install is a no-op, not a second wrapper
    const after = texts.map(parse);
    expect(after).toEqual(before);
    // The post-tagger's net has hundreds of hooks; the sweep now sees only a document's share.
    const full = Math.max(...handed);
    expect(handed.length).toBeGreaterThan(texts.length);
    expect(handed.filter((n) => n >= 300)).toEqual([]);
    expect(full).toBeLessThan(300);
  });

  it("parses without the chunker give the same tags, roots and named entities", () => {
    const world = (nlp as unknown as { world(): { hooks: string[] } }).world();
    expect(world.hooks).toContain("chunks");
    const before = texts.map(parse);
    skipChunker(nlp);
    expect(world.hooks).not.toContain("chunks");
    expect(texts.map(parse)).toEqual(before);
  });
});
