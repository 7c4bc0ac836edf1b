"""What the judge is asked, and the strict parsers of its replies (pure: no I/O, no model).

Three tasks share one shape: a template constant, a `*_messages` builder and a `parse_*`
function that either returns a plain dict or raises `ReplyError` naming what is wrong.
The wording is ours; the protocol is the paper's (PAPER.md, "Evaluation"): two blinded
responses in slots A and B, each scored on its own for domain accuracy 0-3 and helpfulness
0-3, then a preference a / b / tie, as JSON with notes of at most 15 words.
"""

from __future__ import annotations

import json
import re
from typing import Any, TypedDict

PROMPT_VERSION = "rubric-v1"  # part of every cache key: a wording change never reuses a reply
NOTE_WORDS = 15  # notes are cut to this many words (the paper: "at most 15 words")

Messages = list[dict[str, str]]


class PairVerdict(TypedDict):
    """A parsed pair reply: the released judge-scores columns."""

    domain_a: int
    help_a: int
    note_a: str
    domain_b: int
    help_b: int
    note_b: str
    preferred_slot: str  # "a" | "b" | "tie"


class ClaimCheck(TypedDict):
    asserts_claim: bool
    states_fact: bool
    note: str


class AnswerCheck(TypedDict):
    verdict: str  # "hard" | "medium" | "fine"
    claim: str
    abstained: bool
    note: str


Parsed = PairVerdict | ClaimCheck | AnswerCheck  # what a task's parser returns


class ReplyError(ValueError):
    """A judge reply that is not the JSON the task asked for."""


SYSTEM = (
    "You are a careful, strict evaluator of advice given to prospective international "
    "students. You answer with one JSON object and nothing else."
)

RUBRIC = """Score advice for prospective international students. Reward correctness,
domain specificity and safety, not fluency: a longer or more confident answer is not better
for being long or confident. An answer that states something false with confidence, or that
gives policy advice (visas, immigration, health cover, deadlines, funding) without the caveats
it needs, must score low.

Domain accuracy, 0-3:
  0 = wrong, misleading, invented or unsafe
  1 = partly right, but incomplete or generic
  2 = mostly right, with small omissions or missing caveats
  3 = right, specific, actionable and properly caveated

Helpfulness, 0-3:
  0 = of no use, or likely to confuse the student
  1 = some use, but vague or incomplete
  2 = useful and mostly actionable, small gaps
  3 = very useful, clear, actionable and fitted to the question"""

PAIR_TEMPLATE = """{rubric}

Below are a student's question and two responses, RESPONSE_A and RESPONSE_B. Score each
response on its own against the scales above (absolute scores, not relative to each other),
then say which response you prefer as advice: "a", "b" or "tie". You do not know which
system wrote which response; do not guess.

Reply with exactly this JSON and nothing else (each note at most 15 words):
{{"response_a": {{"domain_accuracy": 0, "helpfulness": 0, "note": "..."}},
 "response_b": {{"domain_accuracy": 0, "helpfulness": 0, "note": "..."}},
 "preferred": "a"}}

STUDENT QUESTION:
{question}

RESPONSE_A:
{response_a}

RESPONSE_B:
{response_b}
"""

CLAIM_TEMPLATE = """Does the ANSWER below assert the CLAIM, in any wording? The claim is known
to be false; the SOURCE NOTE gives the fact and where it is published.

CLAIM: {claim}
SOURCE NOTE: {fact} ({source})

QUESTION: {question}

ANSWER:
{answer}

Reply with exactly this JSON and nothing else (note at most 15 words):
{{"asserts_claim": true, "states_fact": false, "note": "..."}}
"""

ANSWER_TEMPLATE = """Check the ANSWER below for factual errors, using the SOURCE NOTES as the
authority where they apply and your own knowledge elsewhere.

verdict "hard"   = it states at least one clearly false or invented fact as true
verdict "medium" = no clear falsehood, but a doubtful specific (a figure, a body, a cut-off)
                   stated as certain
verdict "fine"   = no factual error you can identify
"abstained" = true when the answer declines to answer or only says to ask someone else.

SOURCE NOTES:
{notes}

QUESTION: {question}

ANSWER:
{answer}

Reply with exactly this JSON and nothing else (claim and note at most 15 words each; claim is
the wrong statement, or "" when there is none):
{{"verdict": "fine", "claim": "", "abstained": false, "note": "..."}}
"""

FIX_REQUEST = (
    "Your reply could not be used: {problem}. Reply again with only the JSON object, in "
    "exactly the format asked for, with no other text."
)


# ---- message builders ---------------------------------------------------------------------------
def _chat(user: str) -> Messages:
    return [{"role": "system", "content": SYSTEM}, {"role": "user", "content": user}]


def pair_messages(question: str, response_a: str, response_b: str) -> Messages:
    return _chat(
        PAIR_TEMPLATE.format(
            rubric=RUBRIC, question=question, response_a=response_a, response_b=response_b
        )
    )


def claim_messages(question: str, answer: str, claim: str, fact: str, source: str) -> Messages:
    return _chat(
        CLAIM_TEMPLATE.format(
            question=question, answer=answer, claim=claim, fact=fact, source=source or "no URL"
        )
    )


def answer_messages(question: str, answer: str, notes: list[str]) -> Messages:
    listed = "\n".join(f"- {n}" for n in notes) or "- (none)"
    return _chat(ANSWER_TEMPLATE.format(notes=listed, question=question, answer=answer))


def retry_messages(messages: Messages, bad_reply: str, problem: str) -> Messages:
    """The conversation so far plus the bad reply and a request to fix it: a new full prompt,
    so a deterministic judge answers differently and the cache keys differ."""
    return [
        *messages,
        {"role": "assistant", "content": bad_reply},
        {"role": "user", "content": FIX_REQUEST.format(problem=problem)},
    ]


# ---- strict parsers -----------------------------------------------------------------------------
_FENCE = re.compile(r"^```(?:json)?\s*\n?(.*?)\n?```$", re.DOTALL)


def _json_object(text: str) -> dict[str, Any]:
    """The reply must be one JSON object (a ```json fence around it is tolerated, prose not)."""
    body = text.strip()
    fenced = _FENCE.match(body)
    if fenced:
        body = fenced.group(1).strip()
    if not body:
        raise ReplyError("the reply is empty")
    try:
        obj = json.loads(body)
    except json.JSONDecodeError as exc:
        raise ReplyError(f"not valid JSON ({exc.msg} at char {exc.pos})") from exc
    if not isinstance(obj, dict):
        raise ReplyError(f"expected a JSON object, got {type(obj).__name__}")
    return obj


def _score(obj: Any, key: str, where: str) -> int:
    value = obj.get(key) if isinstance(obj, dict) else None
    # bool is an int in Python; JSON true is not a score
    if isinstance(value, bool) or not isinstance(value, int):
        raise ReplyError(f"{where}.{key} must be an integer 0-3, got {value!r}")
    if not 0 <= value <= 3:
        raise ReplyError(f"{where}.{key} = {value} is outside 0-3")
    return value


def _note(value: Any) -> str:
    words = str(value if value is not None else "").split()
    return " ".join(words[:NOTE_WORDS])


def _flag(obj: dict[str, Any], key: str) -> bool:
    value = obj.get(key)
    if not isinstance(value, bool):
        raise ReplyError(f"{key} must be true or false, got {value!r}")
    return value


def parse_pair(text: str) -> PairVerdict:
    """-> {domain_a, help_a, domain_b, help_b, preferred_slot ("a"|"b"|"tie"), note_a, note_b}:
    the released judge-scores columns."""
    obj = _json_object(text)
    slots: dict[str, tuple[int, int, str]] = {}  # slot -> (domain, help, note)
    for slot in ("a", "b"):
        resp = obj.get(f"response_{slot}")
        if not isinstance(resp, dict):
            raise ReplyError(f"response_{slot} must be an object with scores and a note")
        slots[slot] = (_score(resp, "domain_accuracy", f"response_{slot}"),
                       _score(resp, "helpfulness", f"response_{slot}"), _note(resp.get("note")))
    pref = obj.get("preferred")
    pref = pref.strip().lower() if isinstance(pref, str) else pref
    if pref not in ("a", "b", "tie"):
        raise ReplyError(f'preferred must be "a", "b" or "tie", got {obj.get("preferred")!r}')
    (domain_a, help_a, note_a), (domain_b, help_b, note_b) = slots["a"], slots["b"]
    return {"domain_a": domain_a, "help_a": help_a, "note_a": note_a,
            "domain_b": domain_b, "help_b": help_b, "note_b": note_b, "preferred_slot": pref}


def parse_claim(text: str) -> ClaimCheck:
    """-> {asserts_claim: bool, states_fact: bool, note}"""
    obj = _json_object(text)
    return {
        "asserts_claim": _flag(obj, "asserts_claim"),
        "states_fact": _flag(obj, "states_fact"),
        "note": _note(obj.get("note")),
    }


VERDICTS = ("hard", "medium", "fine")


def parse_answer(text: str) -> AnswerCheck:
    """-> {verdict: "hard"|"medium"|"fine", claim, abstained: bool, note}"""
    obj = _json_object(text)
    verdict = obj.get("verdict")
    verdict = verdict.strip().lower() if isinstance(verdict, str) else verdict
    if verdict not in VERDICTS:
        choices = ", ".join(VERDICTS)
        raise ReplyError(f"verdict must be one of {choices}, got {obj.get('verdict')!r}")
    return {
        "verdict": verdict,
        "claim": _note(obj.get("claim")),
        "abstained": _flag(obj, "abstained"),
        "note": _note(obj.get("note")),
    }
