"""Table 2 audit by the author's definitions (scripts/eval/evaluate_dataset.py): small crafted
datasets where one rule decides each number, with the expected value worked out by hand."""

from __future__ import annotations

import itertools
import json
import math
from collections import Counter

import numpy as np
import pytest

from advisor_repro.audits import table2 as audit_table2
from advisor_repro.audits.table2 import (
    StructuralAudit,
    conversation_text,
    distinct_n,
    normalize_text,
    render_markdown,
    split_stats,
    structural_audit,
    template_reuse,
    tfidf_max_similarity,
)


def conv(*values: str) -> dict:
    """A well-formed record: turns alternate human, assistant, ... starting with human."""
    roles = ("human", "assistant")
    return {"conversations": [{"from": roles[i % 2], "value": v} for i, v in enumerate(values)]}


A = conv("How do I apply to Oxford?", "Apply through UCAS.", "Deadline?", "October 15.")
B = conv("What visa does Canada need?", "A study permit.")
C = conv("Is Germany free?", "Mostly tuition free.", "Any fees?", "A semester fee.", "Ok", "Yes")


def test_three_identical_copies_are_one_group_of_three_records() -> None:
    # The author counts groups of equal normalised text and every record in them, the first
    # copy included: three copies are 1 group and 3 records (not "2 duplicates").
    audit = structural_audit([A, A, A, B], [C])
    assert (audit.train["exact_duplicate_groups"],
            audit.train["exact_duplicate_conversations"]) == (1, 3)  # fmt: skip
    assert (audit.all["exact_duplicate_groups"],
            audit.all["exact_duplicate_conversations"]) == (1, 3)  # fmt: skip
    assert audit.test["exact_duplicate_conversations"] == 0


def test_duplicates_are_matched_on_normalised_text() -> None:
    # Case, runs of whitespace and characters outside the author's kept set do not count: the
    # normalised documents are equal, so the two records are one group.
    loud = conv("HOW   do I apply to Oxford?", "Apply through UCAS!*", "Deadline?", "October 15.")
    assert normalize_text("Apply through UCAS!*") == "apply through ucas!"
    audit = structural_audit([A, conv("How do I apply to Oxford?", "Apply through UCAS!",
                                      "Deadline?", "October 15.")], [])  # fmt: skip
    assert audit.train["exact_duplicate_groups"] == 0  # "." and "!" are both kept
    audit = structural_audit([loud, conv("how do i apply to oxford?", "apply through ucas!",
                                         "deadline?", "october 15.")], [])  # fmt: skip
    assert (audit.train["exact_duplicate_groups"],
            audit.train["exact_duplicate_conversations"]) == (1, 2)  # fmt: skip


def test_a_test_conversation_twice_in_train_is_one_overlap() -> None:
    # Overlap is the number of distinct normalised texts found in both splits: B twice in
    # train and once in test is 1, and pooled it is 1 group of 3 records.
    audit = structural_audit([B, B, A], [B, C])
    assert audit.train_test["train_test_exact_overlap"] == 1
    assert (audit.all["exact_duplicate_groups"],
            audit.all["exact_duplicate_conversations"]) == (1, 3)  # fmt: skip
    # The copy of B in test has cosine 1 to train: one near-duplicate, 1 of 2 test records.
    assert audit.train_test["near_dup_test_conversations"] == 1
    assert audit.train_test["near_dup_test_percent"] == pytest.approx(50.0)
    assert audit.train_test["max_sim_max"] == pytest.approx(1.0)


def test_two_answers_differing_only_in_case_are_one_repeated_group() -> None:
    train = [conv("q1", "Yes, the visa is free."), conv("q2", "YES, THE VISA IS FREE.")]
    test = [conv("q3", "Sure"), conv("q4", "sure "), conv("q5", "")]
    audit = structural_audit(train, test)
    assert (audit.train["repeated_answer_groups"],
            audit.train["repeated_answer_instances"]) == (1, 2)  # fmt: skip
    # Pooled: 2 groups (the visa answer, "sure"), 4 instances; the empty answer is left out
    # of the responses (the author's `if norm`), so 2 unique responses.
    assert (audit.all["repeated_answer_groups"],
            audit.all["repeated_answer_instances"],
            audit.all["unique_assistant_responses"]) == (2, 4, 2)  # fmt: skip
    assert audit.test["repeated_answer_instances_pooled"] == 2
    assert audit.test["repeated_answer_groups_pooled"] == 1
    assert audit.all["repeated_answer_locations"] == [
        ["train[0].turn1", "train[1].turn1"], ["test[0].turn1", "test[1].turn1"]]
    assert audit.test["empty_fields"] == 1


def test_broken_role_alternation_and_schema_are_rates_not_errors() -> None:
    records = [
        A,  # both checks pass
        {"conversations": [{"from": "human", "value": "q"}, {"from": "human", "value": "q"}]},
        # starts with the assistant but alternates: the author's rule passes it
        {"conversations": [{"from": "assistant", "value": "hi"}, {"from": "human", "value": "x"}]},
        # no `value` in a turn: schema fails, and the missing value counts as empty
        {"conversations": [{"from": "human", "value": "q"}, {"from": "assistant"}]},
    ]
    stats = split_stats(records, "train")
    assert (stats["schema_valid"], stats["role_alternation_ok"]) == (3, 3)
    assert stats["schema_pass_rate"] == pytest.approx(3 / 4)
    assert stats["role_alternation_pass_rate"] == pytest.approx(3 / 4)
    assert stats["valid_rate"] == pytest.approx(2 / 4)  # A and the assistant-first record
    assert stats["n_invalid"] == 2
    assert stats["empty_fields"] == 1


def test_empty_fields_count_values_only_as_str_makes_them() -> None:
    record = {"conversations": [
        {"from": "", "value": "a question"},  # an empty `from` is not counted
        {"from": "assistant", "value": "  \n"},  # blank after strip: empty
        {"from": "human", "value": None},  # str(None) is "None": not empty
        {"from": "assistant"},  # missing: "" (empty)
    ]}  # fmt: skip
    assert split_stats([record], "train")["empty_fields"] == 2


def test_turn_statistics_use_every_record_and_the_sample_sd() -> None:
    # 2, 4 and 6 turns, and a record with no conversation list (0 turns, as len([])):
    # mean 3, sample SD sqrt(((-3)^2 + (-1)^2 + 1^2 + 3^2) / 3) = sqrt(20/3)
    stats = split_stats([B, A, C, {"text": "no conversations"}], "train")
    assert stats["turns_mean"] == pytest.approx(3.0)
    assert stats["turns_sd"] == pytest.approx(math.sqrt(20 / 3))
    assert (stats["turns_min"], stats["turns_max"]) == (0, 6)
    assert stats["turns_histogram"] == {"0": 1, "2": 1, "4": 1, "6": 1}
    assert split_stats([A], "train")["turns_sd"] == 0.0  # one value: 0.0, as the author


def test_distinct_n_over_role_prefixed_conversations_by_hand() -> None:
    records = [conv("The cat sat.", "the cat ran!"), conv("Hello")]
    assert conversation_text(records[0]) == "human: The cat sat.\nassistant: the cat ran!"
    # tokens (\b\w+\b, lowercased): human the cat sat assistant the cat ran | human hello
    # unigrams 10, unique {human the cat sat assistant ran hello} = 7
    # bigrams 7 + 1 = 8, unique: (the cat) repeats once, so 7
    audit = structural_audit(records[:1], records[1:])
    assert audit.all["distinct_1"] == pytest.approx(7 / 10)
    assert audit.all["distinct_2"] == pytest.approx(7 / 8)
    assert audit.train["distinct_1"] == pytest.approx(6 / 8)
    assert distinct_n(["one"], 2) == 0.0  # no bigrams: 0.0, as the author


def test_role_labels_are_part_of_the_tfidf_document() -> None:
    # No content word is shared, only the role labels "human" and "assistant". The vectoriser
    # sees 2 documents: a term in both has idf ln(3/3) + 1 = 1, a term in one w = ln(3/2) + 1.
    # Each document: 6 unigrams + 5 bigrams, 2 of weight 1 and 9 of weight w, so the cosine is
    # 2 / (2 + 9 w^2). Without the role labels it would be 0.
    train = [conv("oxford tuition", "visa permit")]
    test = [conv("football weather", "sunny beaches")]
    w = 1 + math.log(3 / 2)
    cross = structural_audit(train, test).train_test
    assert cross["max_sim_mean"] == pytest.approx(2 / (2 + 9 * w * w))
    assert cross["max_sim_sd"] == 0.0


def test_max_similarity_sd_is_the_sample_sd() -> None:
    # One test record equal to train (cosine 1), one with the role labels only in common
    # (cosine c as above): sample SD |1 - c| / sqrt(2).
    train = [conv("oxford tuition", "visa permit")]
    test = [conv("oxford tuition", "visa permit"), conv("football weather", "sunny beaches")]
    # Three documents now: the shared-label terms have df 3 (idf 1), the train/first-test terms
    # df 2 (idf 1 + ln(4/3)), the last document's own terms df 1 (idf 1 + ln 2).
    w = 1 + math.log(2)
    c = 2 / (2 + 9 * w * w) ** 0.5 / (2 + 9 * (1 + math.log(4 / 3)) ** 2) ** 0.5
    cross = structural_audit(train, test).train_test
    assert cross["max_sim_min"] == pytest.approx(c)
    assert cross["max_sim_sd"] == pytest.approx(abs(1 - c) / math.sqrt(2))


def test_template_reuse() -> None:
    train = [conv("Q1", "a", "Q3", "b"), conv("Q2", "c")]
    test = [conv(" Q1 ", "x"), conv("Q3", "y"), conv("Q4", "z"), {"conversations": []}]
    reuse = template_reuse(train, test)
    assert reuse == {
        "test_prompts": 3,
        "test_prompts_in_train_first_human": 1,
        "test_prompts_in_train_any_human": 2,
    }


def _brute_force_tfidf_max_sim(train: list[str], test: list[str]) -> np.ndarray:
    """sklearn's smooth IDF (ln((1+n)/(1+df)) + 1), raw counts, L2 rows, dense double loop."""
    docs = [d.split() for d in train + test]
    grams = [Counter(t + [f"{a} {b}" for a, b in itertools.pairwise(t)]) for t in docs]
    vocab = sorted({g for c in grams for g in c})
    df = np.array([sum(g in c for c in grams) for g in vocab], dtype=float)
    idf = np.log((1 + len(docs)) / (1 + df)) + 1
    dense = np.array([[c[g] for g in vocab] for c in grams], dtype=float) * idf
    dense /= np.linalg.norm(dense, axis=1, keepdims=True)
    tr, te = dense[: len(train)], dense[len(train) :]
    return np.array([max(float(np.dot(q, d)) for d in tr) for q in te])


def test_tfidf_max_similarity_matches_brute_force(monkeypatch: pytest.MonkeyPatch) -> None:
    # Tokens like "w07" are lowercase, >= 2 chars and not stop words, so sklearn's tokenizer
    # yields exactly the whitespace tokens the brute force uses.
    rng = np.random.default_rng(0)
    vocab = [f"w{i:02d}" for i in range(12)]

    def doc() -> str:
        return " ".join(rng.choice(vocab, size=int(rng.integers(3, 25))))

    train, test = [doc() for _ in range(40)], [doc() for _ in range(13)]
    monkeypatch.setattr(audit_table2, "SIM_CHUNK_ROWS", 4)  # force several blocks
    got = tfidf_max_similarity(train, test)
    np.testing.assert_allclose(got, _brute_force_tfidf_max_sim(train, test), rtol=1e-10)
    assert got.shape == (13,)


def test_records_the_author_would_crash_on_are_counted_not_fatal() -> None:
    audit = structural_audit([{"bad": 1}, "x", {"conversations": ["turn that is not a dict"]}],
                             [])  # fmt: skip
    assert audit.train["n_invalid"] == 3 and audit.train["schema_valid"] == 0
    assert audit.test["valid_rate"] is None
    assert audit.train_test["max_sim_mean"] is None
    json.dumps(audit.to_json())  # must be JSON-serialisable as is


def test_render_markdown_and_json() -> None:
    audit = structural_audit([A, B], [C])
    assert json.loads(json.dumps(audit.to_json())) == audit.to_json()
    assert StructuralAudit.from_json(audit.to_json()) == audit
    text = render_markdown(audit)
    assert text.startswith("Table 2 (structural dataset audit)\n")
    assert "| n_conversations | 2 | 1 | 3 |" in text
    assert "| turns_histogram | 2: 1, 4: 1 | 6: 1 | 2: 1, 4: 1, 6: 1 |" in text
    assert "| train_test_exact_overlap | 0 |" in text
    assert "| near_dup_threshold | 0.9000 |" in text
