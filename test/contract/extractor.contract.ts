// The Extractor port's behaviour suite: one extraction per message, valid entity types,
// relations only between entities of the same extraction, speakers as people.

import { describe, expect, it } from "vitest";
import type { Extractor } from "../../lib/core/ports.ts";
import { ENTITY_TYPES } from "../../lib/core/types.ts";

const at = "2023-05-08T13:56:00.000Z";

export function extractorContract(name: string, setup: () => Promise<Extractor>) {
  describe(`Extractor contract: ${name}`, () => {
    it("returns one extraction per message, in order", async () => {
      const x = await setup();
      expect(x.version).toMatch(/\S/);
      const out = await x.extract([
        { content: "I moved to Berlin last year to work for Siemens.", name: "Ann", createdAt: at },
        { content: "ok", name: null, createdAt: at },
      ]);
      expect(out).toHaveLength(2);
      expect(await x.extract([])).toEqual([]);
    });

    it("finds people, places and speakers with valid types and no duplicates", async () => {
      const x = await setup();
      const [e] = await x.extract([{ content: "Maria and I drove to Seattle. Maria loved Seattle.", name: "Ann", createdAt: at }]);
      const names = e!.entities.map((n) => n.name.toLowerCase());
      expect(names).toEqual(expect.arrayContaining(["ann", "maria", "seattle"]));
      expect(e!.entities.find((n) => n.name.toLowerCase() === "ann")?.type).toBe("person");
      expect(e!.entities.every((n) => (ENTITY_TYPES as readonly string[]).includes(n.type))).toBe(true);
      const keys = e!.entities.map((n) => `${n.type}:${n.name.toLowerCase()}`);
      expect(new Set(keys).size).toBe(keys.length);
    });

    it("relates only entities it extracted", async () => {
      const x = await setup();
      const [e] = await x.extract([{ content: "Caroline went to Sweden with her friend Jon in June.", name: "Melanie", createdAt: at }]);
      const names = new Set(e!.entities.map((n) => n.name));
      expect(e!.relations.length).toBeGreaterThan(0);
      for (const r of e!.relations) {
        expect(names.has(r.from)).toBe(true);
        expect(names.has(r.to)).toBe(true);
        expect(r.type).toMatch(/\S/);
      }
    });
  });
}
