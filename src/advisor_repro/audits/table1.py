"""Table 1 of the paper: the topic distribution of train[:200], by both of the author's methods.

The paper prints one distribution and credits it to the semantic classifier
(sentence-transformers/all-MiniLM-L6-v2), but its counts (32.0% "other/general advising") are the
keyword classifier's; the author's quality report gives the semantic classifier's own result
(11.0% other, 0% travel, 96 of 200 low-confidence). Both are computed here on the first human
turn of each of the first `sample` training conversations; `audit.topic_table` names the one
the report sets beside the paper (deviations: table1-attribution).

- keyword: the text lowercased with whitespace collapsed; a keyword with a non-word character
  matches as a substring, a single word at word boundaries; the label with the most matched
  keywords wins, ties going to the first label in the author's order; no match is "other".
- semantic: cosine similarity between the question and each of the 10 label descriptions
  (unit-normalised MiniLM embeddings); the best label wins; an assignment is low-confidence when
  the best score leads the second by less than `margin` (0.05).

Pure: the embeddings come from the caller (`encode`: texts -> unit vectors, rows of a matrix).
The labels, keywords and descriptions are data: artifacts/topic_labels.toml.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NotRequired, TypedDict

from advisor_repro.smokedata.generate import Record

LABELS_FILE = Path(__file__).resolve().parents[3] / "artifacts" / "topic_labels.toml"
METHODS = ("keyword", "semantic")
Encode = Callable[[list[str]], Any]  # texts -> unit vectors (a torch or numpy matrix)


class TopicLabel(TypedDict):
    """One label of artifacts/topic_labels.toml."""

    name: str
    keywords: list[str]
    description: str  # what the semantic classifier compares a question with


class SemanticTopic(TypedDict):
    topic: str
    score: float
    second: str
    second_score: float
    low_confidence: bool  # best leads second by less than the margin


class TopicItem(TypedDict):
    """One question of train[:sample] and its labels (table1.json's items)."""

    index: int
    question: str
    keyword: str
    keywords_matched: list[str]
    semantic: NotRequired[str]
    semantic_score: NotRequired[float]
    semantic_second: NotRequired[str]
    semantic_second_score: NotRequired[float]
    low_confidence: NotRequired[bool]


class Share(TypedDict):
    count: int
    percent: float


Distribution = dict[str, Share]  # label -> its count and percent, in the author's order


class KeywordResult(TypedDict):
    distribution: Distribution


class SemanticResult(TypedDict):
    distribution: Distribution
    low_confidence: int
    low_confidence_rate: float


class Method(TypedDict):
    keyword: str
    semantic: str
    margin: float


class TopicTableJson(TypedDict):
    n: int
    sample: int
    shown: str
    keyword: KeywordResult
    semantic: SemanticResult | None
    method: Method
    items: list[TopicItem]


@dataclass
class TopicTable:
    """table1.json: both distributions, the per-item assignments, which one the report shows."""

    n: int  # questions classified: len(train[:sample])
    sample: int
    shown: str  # keyword | semantic
    keyword: KeywordResult
    method: Method
    semantic: SemanticResult | None = None  # None: not computed (no encoder)
    items: list[TopicItem] = field(default_factory=list)

    def distribution(self, method: str) -> Distribution | None:
        """The distribution of `method` (keyword | semantic); None where not computed."""
        result = self.keyword if method == "keyword" else self.semantic
        return result["distribution"] if result else None

    def to_json(self) -> TopicTableJson:
        return {"n": self.n, "sample": self.sample, "shown": self.shown, "keyword": self.keyword,
                "semantic": self.semantic, "method": self.method, "items": self.items}

    @classmethod
    def from_json(cls, d: TopicTableJson) -> TopicTable:
        return cls(n=d["n"], sample=d["sample"], shown=d["shown"], keyword=d["keyword"],
                   method=d["method"], semantic=d["semantic"], items=d["items"])


def load_labels(path: Path = LABELS_FILE) -> tuple[list[TopicLabel], str]:
    """([{name, keywords, description}, ...] in the author's order, the fallback label)."""
    doc = tomllib.loads(path.read_text(encoding="utf-8"))
    return doc["label"], doc["other"]


def first_human_turn(record: Record) -> str:
    for turn in record.get("conversations") or []:
        if isinstance(turn, dict) and turn.get("from") == "human":
            return str(turn.get("value", ""))
    return ""


def _found(text: str, keyword: str) -> bool:
    if re.search(r"\W", keyword):
        return keyword in text
    return re.search(rf"\b{re.escape(keyword)}\b", text) is not None


def keyword_topic(question: str, labels: list[TopicLabel], other: str) -> tuple[str, list[str]]:
    """(label, matched keywords) by the most keyword matches; no match is `other`."""
    text = re.sub(r"\s+", " ", question.lower()).strip()
    best: tuple[int, str, list[str]] = (0, other, [])
    for label in labels:
        hits = [k for k in label["keywords"] if _found(text, k)]
        if len(hits) > best[0]:  # strictly more: a tie keeps the earlier label
            best = (len(hits), label["name"], hits)
    return best[1], best[2]


def semantic_topics(
    questions: list[str], labels: list[TopicLabel], encode: Encode, margin: float
) -> list[SemanticTopic]:
    """Per question: best label, its score, the runner-up and its score, low-confidence flag."""
    names = [label["name"] for label in labels]
    q = encode([s.strip() for s in questions])
    d = encode([label["description"] for label in labels])
    sims = (q @ d.T).tolist()
    out: list[SemanticTopic] = []
    for row in sims:
        ranked = sorted(range(len(row)), key=lambda i: row[i], reverse=True)
        first, second = ranked[0], ranked[1]
        out.append({
            "topic": names[first], "score": row[first], "second": names[second],
            "second_score": row[second], "low_confidence": row[first] - row[second] < margin,
        })  # fmt: skip
    return out


def distribution(topics: list[str], names: list[str]) -> Distribution:
    n = len(topics) or 1
    return {name: {"count": topics.count(name), "percent": 100.0 * topics.count(name) / n}
            for name in names}  # fmt: skip


def topic_table(
    train: list[Record], encode: Encode | None, sample: int = 200, margin: float = 0.05,
    shown: str = "keyword",
) -> TopicTable:
    """table1.json: both distributions over train[:sample], the per-item assignments, and which
    distribution the report shows beside the paper's. `encode` None leaves the semantic one out
    (recorded as not computed)."""
    labels, other = load_labels()
    names = [label["name"] for label in labels]
    questions = [first_human_turn(r) for r in train[:sample]]
    keyword = [keyword_topic(q, labels, other) for q in questions]
    items: list[TopicItem] = [
        {"index": i, "question": q, "keyword": k[0], "keywords_matched": k[1]}
        for i, (q, k) in enumerate(zip(questions, keyword, strict=True))]  # fmt: skip
    result = TopicTable(
        n=len(questions), sample=sample, shown=shown,
        keyword={"distribution": distribution([k[0] for k in keyword], names)},
        method={"keyword": "most matched keywords, ties to the first label; none: " + other,
                "semantic": f"cosine to 10 label descriptions; low confidence below a "
                            f"{margin} top-2 margin", "margin": margin},
        items=items,
    )  # fmt: skip
    if encode is not None:
        sem = semantic_topics(questions, labels, encode, margin)
        for item, s in zip(items, sem, strict=True):
            item.update({"semantic": s["topic"], "semantic_score": round(s["score"], 6),
                         "semantic_second": s["second"],
                         "semantic_second_score": round(s["second_score"], 6),
                         "low_confidence": s["low_confidence"]})  # fmt: skip
        low = sum(s["low_confidence"] for s in sem)
        result.semantic = {
            "distribution": distribution([s["topic"] for s in sem], names),
            "low_confidence": low, "low_confidence_rate": low / (len(sem) or 1),
        }  # fmt: skip
    return result


def render_markdown(table: TopicTable) -> str:
    names = list(table.keyword["distribution"])
    sem = table.semantic
    lines = [f"# Table 1: topic distribution of train[:{table.sample}] (n = {table.n})", "",
             "| topic | keyword count | keyword % | semantic count | semantic % |",
             "|---|---|---|---|---|"]  # fmt: skip
    for name in names:
        k = table.keyword["distribution"][name]
        s = sem["distribution"][name] if sem else None
        lines.append(
            f"| {name} | {k['count']} | {k['percent']:.1f}% | "
            + (f"{s['count']} | {s['percent']:.1f}% |" if s else "- | - |")
        )
    if sem:
        lines += ["", f"Semantic low-confidence assignments: {sem['low_confidence']} of "
                      f"{table.n} ({100 * sem['low_confidence_rate']:.1f}%)."]  # fmt: skip
    lines += ["", f"The report shows the {table.shown} distribution beside the paper's "
                  "(audit.topic_table; deviations: table1-attribution)."]  # fmt: skip
    return "\n".join(lines) + "\n"
