// What kind of answer a question asks for, and whether a turn holds that kind of thing: the
// answer-type matching of classic question answering. "When did Jon go to Rome?" is
// answered by a turn that says when ("last week", "in May", "yesterday"), not by every turn
// that says "Rome"; "How many kids does she have?" by one with a number in it. A turn of
// the right kind ranks somewhat higher among the turns the words already matched.

export type AnswerType = "time" | "quantity";

const WHEN = /^\s*(?:and\s+|so\s+)?when\b|\bwhat (?:date|day|year|month|time)\b|\bhow long ago\b/i;
const HOW_MANY = /\bhow (?:many|much|often|long)\b/i;

/** The kind of answer a question asks for, or null when it asks for neither a time nor a quantity. */
export function answerType(question: string): AnswerType | null {
  if (WHEN.test(question)) return "time";
  if (HOW_MANY.test(question)) return "quantity";
  return null;
}

const TIME = new RegExp(
  [
    "\\b(?:yesterday|today|tonight|tomorrow|ago|recently|lately|earlier|anniversary|birthday)\\b",
    "\\b(?:last|next|this|past|coming|previous|few|couple of|early|late)\\s+(?:week|weekend|month|year|night|morning|evening|summer|winter|spring|fall|autumn|monday|tuesday|wednesday|thursday|friday|saturday|sunday|days?|weeks?|months?|years?)\\b",
    "\\b(?:january|february|march|april|june|july|august|september|october|november|december|monday|tuesday|wednesday|thursday|friday|saturday|sunday)\\b",
    "\\bMay\\b",
    "\\b(?:19|20)\\d{2}\\b",
    "\\b(?:since|until|when i was|as a kid|in high school|in college)\\b",
  ].join("|"),
  "i",
);
// Lower-case "may" is the verb ("I may go"): removed before looking for a time.
const MAY_VERB = /\bmay\b/g;

const QUANTITY =
  /\b(?:\d+(?:[.,]\d+)?|one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|twenty|thirty|hundred|thousand|dozen|once|twice|several|few|couple|many|every|times|daily|weekly|monthly)\b/i;

/** Whether a turn says something of the kind the question asks for. */
export function holdsAnswerType(text: string, type: AnswerType): boolean {
  if (type === "quantity") return QUANTITY.test(text);
  return TIME.test(text.replace(MAY_VERB, " "));
}
