// The Embedder port's behaviour suite: shape, determinism, unit length, batch/single
// agreement and that closer texts score closer. A remote embedder (OpenAI-compatible,
// Pinecone Inference) runs the same suite against its local counterpart.

import { describe, expect, it } from "vitest";
import type { Embedder } from "../../lib/core/ports.ts";

const cosine = (a: Float32Array, b: Float32Array) => a.reduce((s, x, i) => s + x * b[i]!, 0);
const norm = (a: Float32Array) => Math.sqrt(cosine(a, a));

export function embedderContract(name: string, setup: () => Promise<Embedder>) {
  describe(`Embedder contract: ${name}`, () => {
    it("returns one vector of `dimensions` floats per text, in order", async () => {
      const e = await setup();
      expect(e.model).toMatch(/\S/);
      const out = await e.embed(["a dog in the park", "quarterly tax report", "a puppy at the park"]);
      expect(out).toHaveLength(3);
      for (const v of out) {
        expect(v).toBeInstanceOf(Float32Array);
        expect(v.length).toBe(e.dimensions);
        expect(v.every(Number.isFinite)).toBe(true);
      }
      expect(await e.embed([])).toEqual([]);
    });

    it("is deterministic and agrees between batch and single calls", async () => {
      const e = await setup();
      const [batch] = await e.embed(["We adopted a rescue dog named Max."]);
      const [single] = (await e.embed(["We adopted a rescue dog named Max.", "unrelated text"])).slice(0, 1);
      expect(Array.from(single!)).toEqual(Array.from(batch!));
    });

    it("makes unit-length vectors, and never NaN for text without content words", async () => {
      const e = await setup();
      const [v, blank] = await e.embed(["Lake Tahoe hiking trip in August", "the of and"]);
      expect(norm(v!)).toBeCloseTo(1, 4);
      expect(blank!.every(Number.isFinite)).toBe(true);
      expect([0, 1]).toContainEqual(Math.round(norm(blank!)));
    });

    it("puts related texts closer than unrelated ones", async () => {
      const e = await setup();
      const [q, near, far] = await e.embed(["hiking in the mountains", "we went hiking up a mountain trail", "my tax return is due in April"]);
      expect(cosine(q!, near!)).toBeGreaterThan(cosine(q!, far!));
    });
  });
}
