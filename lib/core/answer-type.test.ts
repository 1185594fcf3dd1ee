import { describe, expect, it } from "vitest";
import { answerType, holdsAnswerType } from "./answer-type.ts";

describe("answerType", () => {
  it("tells time and quantity questions from the rest", () => {
    expect(answerType("When did Jon go to Rome?")).toBe("time");
    expect(answerType("In what year did she move?")).toBe("time");
    expect(answerType("What date is the party?")).toBe("time");
    expect(answerType("How many turtles does Nate have?")).toBe("quantity");
    expect(answerType("How often does John go to the gym?")).toBe("quantity");
    expect(answerType("What did Jon do when he lost his job?")).toBe(null);
    expect(answerType("Why did Gina open a store?")).toBe(null);
  });
});

describe("holdsAnswerType", () => {
  it("finds a time in a turn: relative days, weeks, months, years", () => {
    for (const t of ["I went there yesterday", "Last week was wild", "We met in March", "back in 2019", "a few weeks ago", "See you next Friday"]) {
      expect(holdsAnswerType(t, "time"), t).toBe(true);
    }
    for (const t of ["I love dancing", "That sounds awesome!", "I may go, who knows"]) expect(holdsAnswerType(t, "time"), t).toBe(false);
    expect(holdsAnswerType("It opens in May", "time")).toBe(true);
  });

  it("finds a number or an amount in a turn", () => {
    for (const t of ["I have 3 turtles", "twice a week", "three kids", "a few times"]) expect(holdsAnswerType(t, "quantity"), t).toBe(true);
    expect(holdsAnswerType("I love my turtles", "quantity")).toBe(false);
  });
});
