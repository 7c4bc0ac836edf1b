"""Table 2 audit: hand-built datasets with every number known, and a brute-force TF-IDF check."""

from __future__ import annotations

import itertools
import json
import math
from collections import Counter

import numpy as np
import pytest

from advisor_repro.audits import table2 as audit_table2
from advisor_repro.audits.table2 import (
    distinct_n,
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


def test_validity_empty_fields_and_turn_stats() -> None:
    records = [
        A,  # valid, 4 turns
        B,  # valid, 2 turns
        C,  # valid, 6 turns
        {"conversations": [{"from": "assistant", "value": "hi"}]},  # starts with assistant
        {"conversations": [{"from": "human", "value": " "}, {"from": "assistant"}]},  # 2 empty
        {"conversations": [{"from": "human", "value": "q"}, {"from": "human", "value": "q"}]},
        {"conversations": []},  # empty list
        {"text": "no conversations key"},
        "not even a dict",
        {"conversations": [{"from": "", "value": "x"}, "turn that is not a dict"]},  # 1 empty
    ]
    stats = split_stats(records)
    assert stats["n_conversations"] == 10
    assert stats["n_valid"] == 3
    assert stats["n_invalid"] == 7
    assert stats["valid_rate"] == pytest.approx(0.3)
    assert stats["empty_fields"] == 3
    # Turn statistics over the 3 valid conversations: 4, 2, 6.
    assert stats["turns_mean"] == pytest.approx(4.0)
    assert stats["turns_sd_pop"] == pytest.approx(math.sqrt(8 / 3))
    assert (stats["turns_min"], stats["turns_max"]) == (2, 6)
    assert stats["turns_histogram"] == {"2": 1, "4": 1, "6": 1}


def test_exact_duplicates_and_train_test_overlap() -> None:
    # The duplicate of A differs only in key order, which the normalised JSON ignores.
    a_reordered = {
        "conversations": [{"value": t["value"], "from": t["from"]} for t in A["conversations"]]
    }
    train = [A, B, a_reordered]
    test = [A, C, C]
    audit = structural_audit(train, test)
    assert audit["train"]["exact_duplicate_conversations"] == 1
    assert audit["test"]["exact_duplicate_conversations"] == 1
    assert audit["all"]["exact_duplicate_conversations"] == 3  # keys A B A A C C: 6 - 3 unique
    assert audit["train_test"]["train_test_exact_overlap"] == 1
    # The test copy of A has cosine 1 to train; C shares no content words with train.
    assert audit["train_test"]["near_dup_test_conversations"] == 1
    assert audit["train_test"]["max_sim_max"] == pytest.approx(1.0)
    assert audit["train_test"]["max_sim_min"] == pytest.approx(0.0)


def test_near_duplicate_above_and_distinct_pair_below_threshold() -> None:
    words = ["oxford", "cambridge", "scholarship", "tuition"]
    words += ["deadline", "visa", "permit", "housing"]
    long_train = conv(" ".join(words[:4]), " ".join(words[4:]))
    other_train = conv("medicine residency", "ranking campus")
    # Same text but case and spacing: identical TF-IDF vector, cosine exactly 1.
    near = conv(" ".join(w.upper() for w in words[:4]), "  ".join(words[4:]))
    # Shares two of eight content words with long_train: well below 0.9.
    far = conv("oxford cambridge", "football weather")
    audit = structural_audit([long_train, other_train], [near, far], near_dup_threshold=0.9)
    cross = audit["train_test"]
    assert cross["near_dup_test_conversations"] == 1
    assert cross["max_sim_max"] == pytest.approx(1.0)
    assert 0.0 < cross["max_sim_min"] < 0.9
    assert cross["train_test_exact_overlap"] == 0
    # Raising the threshold above 1 leaves no near duplicates.
    assert (
        structural_audit([long_train], [near], 1.01)["train_test"]["near_dup_test_conversations"]
        == 0
    )


def test_distinct_n_by_hand() -> None:
    answers = ["the cat sat", "The cat ran", "Hello"]
    # unigrams: the cat sat the cat ran hello -> 5 unique / 7 total
    assert distinct_n(answers, 1) == pytest.approx(5 / 7)
    # bigrams never cross answers: (the cat)(cat sat)(the cat)(cat ran) -> 3 unique / 4 total
    assert distinct_n(answers, 2) == pytest.approx(3 / 4)
    assert distinct_n(["one"], 2) is None
    # Through the audit, only assistant turns count (human turns are ignored).
    audit = structural_audit([conv("q the cat", "the cat sat")], [conv("q", "The cat ran")])
    assert audit["all"]["distinct_1"] == pytest.approx(4 / 6)
    assert audit["all"]["distinct_2"] == pytest.approx(3 / 4)
    assert audit["train"]["distinct_1"] == pytest.approx(1.0)


def test_repeated_answers() -> None:
    train = [conv("q1", "Yes.", "q2", " Yes. "), conv("q3", "No.", "q4", "Maybe")]
    test = [conv("q5", "No.", "q6", "Sure"), conv("q7", "Sure", "q8", "")]
    audit = structural_audit(train, test)
    assert (
        audit["train"]["repeated_answer_groups"],
        audit["train"]["repeated_answer_instances"],
    ) == (1, 2)
    assert (
        audit["test"]["repeated_answer_groups"],
        audit["test"]["repeated_answer_instances"],
    ) == (1, 2)
    # Pooled: Yes. x2, No. x2, Sure x2; the empty answer is not a group.
    assert (audit["all"]["repeated_answer_groups"], audit["all"]["repeated_answer_instances"]) == (
        3,
        6,
    )
    assert audit["train"]["repeated_answer_instances_pooled"] == 3  # Yes., Yes., No.
    assert audit["test"]["repeated_answer_instances_pooled"] == 3  # No., Sure, Sure
    assert audit["test"]["empty_fields"] == 1


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
    monkeypatch.setattr(audit_table2, "SIM_CHUNK_ROWS", 4)  # force several chunks
    got = tfidf_max_similarity(train, test)
    np.testing.assert_allclose(got, _brute_force_tfidf_max_sim(train, test), rtol=1e-10)
    assert got.shape == (13,)


def test_all_invalid_and_empty_splits_do_not_crash() -> None:
    audit = structural_audit([{"bad": 1}, "x"], [])
    assert audit["train"]["n_invalid"] == 2
    assert audit["test"]["valid_rate"] is None
    assert audit["train_test"]["max_sim_mean"] is None
    assert audit["train"]["turns_histogram"] == {}
    json.dumps(audit)  # must be JSON-serialisable as is


def test_render_markdown_and_json() -> None:
    audit = structural_audit([A, B], [C])
    assert json.loads(json.dumps(audit)) == audit
    text = render_markdown(audit)
    assert text.startswith("Table 2 (structural dataset audit)\n")
    assert "| n_conversations | 2 | 1 | 3 |" in text
    assert "| turns_histogram | 2: 1, 4: 1 | 6: 1 | 2: 1, 4: 1, 6: 1 |" in text
    assert "| train_test_exact_overlap | 0 |" in text
    assert "| near_dup_threshold | 0.9000 |" in text
