"""The replies' JSON schemas: the keys the parsers read, and the byte bound that makes every
reply under the grammar complete within judge.max_tokens."""

import json

import pytest

from advisor_repro.judges.rubric import parse_answer, parse_claim, parse_pair
from advisor_repro.judges.schemas import (
    NOTE_CHARS,
    api_schema,
    json_bound,
    local_schema,
    minimal_reply,
    text_chars_for,
)

PARSE = {"pair": parse_pair, "claim": parse_claim, "answer": parse_answer}


@pytest.mark.parametrize("task", sorted(PARSE))
def test_the_minimal_reply_of_each_schema_parses(task):
    assert PARSE[task](minimal_reply(task))


def test_the_pair_schema_has_exactly_the_parsers_keys():
    s = api_schema("pair")
    assert s["required"] == ["response_a", "response_b", "preferred"]
    assert s["additionalProperties"] is False
    slot = s["properties"]["response_a"]
    assert slot["required"] == ["domain_accuracy", "helpfulness", "note"]
    assert slot["properties"]["domain_accuracy"]["enum"] == [0, 1, 2, 3]
    assert s["properties"]["preferred"]["enum"] == ["a", "b", "tie"]
    assert "maxLength" not in slot["properties"]["note"]  # the API's notes are cut by the parser


@pytest.mark.parametrize("task, max_tokens", [("pair", 200), ("claim", 96), ("answer", 160)])
def test_the_longest_local_reply_and_eos_fit_the_budget(task, max_tokens):
    chars = text_chars_for(task, max_tokens)
    assert chars >= 8
    assert json_bound(task, chars) + 1 <= max_tokens < json_bound(task, chars + 1) + 1 + 3
    s = local_schema(task, max_tokens)
    note = (s["properties"]["response_a"]["properties"]["note"] if task == "pair"
            else s["properties"]["note"])
    assert note["maxLength"] == chars


def test_the_pair_bound_by_hand():
    # {"response_a":{"domain_accuracy":0,"helpfulness":0,"note":""}, twice, "preferred":"tie"}
    skeleton = ('{"response_a":{"domain_accuracy":0,"helpfulness":0,"note":""},'
                '"response_b":{"domain_accuracy":0,"helpfulness":0,"note":""},"preferred":"tie"}')
    assert json_bound("pair", 0) == len(skeleton)
    assert json_bound("pair", 10) == len(skeleton) + 20


def test_a_large_budget_keeps_notes_at_their_paper_length():
    assert text_chars_for("pair", 512) == NOTE_CHARS


def test_a_budget_too_small_for_the_reply_is_refused_naming_the_minimum():
    with pytest.raises(ValueError, match=r"judge.max_tokens = 40 cannot hold the pair reply.*"
                                         r"at least \d+ tokens"):
        local_schema("pair", 40)


def test_the_local_text_pattern_excludes_quote_and_backslash():
    import re

    pattern = re.compile(local_schema("claim", 96)["properties"]["note"]["pattern"])
    assert pattern.match("Fine, 3 of 4 - ok (see #2)!")
    assert not pattern.match('says "x"') and not pattern.match("a\\b")
    assert not pattern.match("café")  # one byte per character: the bound holds
    json.dumps(local_schema("answer", 160))  # serialisable for llguidance
