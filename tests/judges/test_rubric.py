"""The strict reply parsers and the retry conversation."""

import json

import pytest

from advisor_repro.judges.rubric import (
    ReplyError,
    pair_messages,
    parse_answer,
    parse_claim,
    parse_pair,
    retry_messages,
)

GOOD = {
    "response_a": {"domain_accuracy": 3, "helpfulness": 2, "note": "Correct: HMS uses MCAT"},
    "response_b": {"domain_accuracy": 0, "helpfulness": 1, "note": "Invents a GRE rule"},
    "preferred": "a",
}


def test_pair_reply_becomes_the_released_columns():
    assert parse_pair(json.dumps(GOOD)) == {
        "domain_a": 3, "help_a": 2, "note_a": "Correct: HMS uses MCAT",
        "domain_b": 0, "help_b": 1, "note_b": "Invents a GRE rule", "preferred_slot": "a",
    }


def test_a_json_fence_is_tolerated_and_case_of_preference_ignored():
    reply = "```json\n" + json.dumps({**GOOD, "preferred": " TIE "}) + "\n```"
    assert parse_pair(reply)["preferred_slot"] == "tie"


def test_notes_are_cut_to_15_words():
    long = {**GOOD, "response_a": {**GOOD["response_a"], "note": " ".join(["w"] * 30)}}
    assert parse_pair(json.dumps(long))["note_a"] == " ".join(["w"] * 15)


@pytest.mark.parametrize(
    "reply, problem",
    [
        ("Sure! " + json.dumps(GOOD), "not valid JSON"),
        ("", "empty"),
        ("[1, 2]", "expected a JSON object"),
        (json.dumps({**GOOD, "preferred": "c"}), "preferred"),
        (json.dumps({**GOOD, "response_b": {"domain_accuracy": 4, "helpfulness": 1}}), "outside"),
        (json.dumps({**GOOD, "response_a": {"domain_accuracy": True, "helpfulness": 1}}),
         "integer"),
        (json.dumps({**GOOD, "response_a": {"domain_accuracy": "3", "helpfulness": 1}}),
         "integer"),
        (json.dumps({"response_a": GOOD["response_a"], "preferred": "a"}), "response_b"),
    ],
)
def test_malformed_pair_replies_are_refused_with_the_reason(reply, problem):
    with pytest.raises(ReplyError, match=problem):
        parse_pair(reply)


def test_claim_and_answer_parsers():
    assert parse_claim('{"asserts_claim": true, "states_fact": false, "note": "says GRE"}') == {
        "asserts_claim": True, "states_fact": False, "note": "says GRE"}
    with pytest.raises(ReplyError, match="true or false"):
        parse_claim('{"asserts_claim": "yes", "states_fact": false}')
    got = parse_answer('{"verdict": "Hard", "claim": "Medicare after 12 months", '
                       '"abstained": false, "note": ""}')
    assert got["verdict"] == "hard" and got["claim"] == "Medicare after 12 months"
    with pytest.raises(ReplyError, match="verdict"):
        parse_answer('{"verdict": "bad", "claim": "", "abstained": false}')


def test_retry_shows_the_bad_reply_and_the_problem():
    first = pair_messages("Q?", "answer one", "answer two")
    assert [m["role"] for m in first] == ["system", "user"]
    assert "RESPONSE_A:\nanswer one" in first[1]["content"]
    again = retry_messages(first, "Sure!", "not valid JSON")
    assert [m["role"] for m in again] == ["system", "user", "assistant", "user"]
    assert again[2]["content"] == "Sure!" and "not valid JSON" in again[3]["content"]
