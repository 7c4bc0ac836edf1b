"""Structural dataset audit: the pure core of the `audit-data` stage (the paper's Table 2).

Every number follows the author's released `scripts/eval/evaluate_dataset.py`
(github.com/codermillat/StudyAbroadGPT), which wrote the metrics file the paper's Table 2
copies; each function names the author's function it follows. Records are the paper's format,
`{"conversations": [{"from": ..., "value": ...}, ...]}`; nothing here reads or writes files.

The author's script reads clean hub data; ours must also survive records it would crash on (a
row that is not a dict, a turn that is not a dict). Those are read as the author's code reads a
missing field: a row without a list counts as an empty conversation, a turn that is not a dict
is left out of the text (and fails the schema check). Invalid records are reported as rates,
never refused: refusing them is the data stage's job.
"""

from __future__ import annotations

import re
import statistics
from collections import Counter, defaultdict
from dataclasses import dataclass
from typing import Any, NotRequired, TypedDict

import numpy as np
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.metrics.pairwise import cosine_similarity

SPLITS = ("train", "test", "all")


class TfidfParams(TypedDict):
    lowercase: bool
    ngram_range: tuple[int, int]
    min_df: int
    max_features: int
    stop_words: str


# evaluate_dataset.near_duplicate_analysis: the author's vectoriser, argument for argument
TFIDF_PARAMS: TfidfParams = {
    "lowercase": True, "ngram_range": (1, 2), "min_df": 1, "max_features": 50000,
    "stop_words": "english",
}  # fmt: skip
SIM_CHUNK_ROWS = 512  # test rows per similarity block: bounds the dense block to 512 x n_train
# evaluate_dataset.normalize_text: what survives normalisation
_NOT_KEPT = re.compile(r"[^a-z0-9\s.,;:!?%$€£₹/\-]")


# --- the records: one per split, then train/test, then Table 2 ---


class RepeatedAnswers(TypedDict):
    unique: int
    groups: int
    instances: int
    locations: list[list[str]]  # the first 10 groups: "split[i].turnj" of each instance


class SplitStats(TypedDict):
    """Every per-split row of Table 2 (train, test or "all": both)."""

    n_conversations: int
    schema_valid: int
    role_alternation_ok: int
    schema_pass_rate: float | None
    role_alternation_pass_rate: float | None
    n_invalid: int
    valid_rate: float | None
    empty_fields: int
    user_turns: int
    assistant_turns: int
    turns_mean: float | None
    turns_sd: float | None
    turns_min: float | None
    turns_max: float | None
    turns_histogram: dict[str, int]  # turn count (as text) -> conversations
    exact_duplicate_groups: int
    exact_duplicate_conversations: int
    distinct_1: float
    distinct_2: float
    unique_assistant_responses: int
    repeated_answer_groups: int
    repeated_answer_instances: int
    repeated_answer_locations: NotRequired[list[list[str]]]  # "all" only
    repeated_answer_groups_pooled: NotRequired[int]
    repeated_answer_instances_pooled: NotRequired[int]


class NearDuplicates(TypedDict):
    near_dup_threshold: float
    near_dup_test_conversations: int
    near_dup_test_percent: float | None
    max_sim_mean: float | None
    max_sim_sd: float | None
    max_sim_min: float | None
    max_sim_max: float | None


class TemplateReuse(TypedDict):
    test_prompts: int
    test_prompts_in_train_first_human: int
    test_prompts_in_train_any_human: int


class TrainTest(NearDuplicates, TemplateReuse):
    train_test_exact_overlap: int


class StructuralAuditJson(TypedDict):
    train: SplitStats
    test: SplitStats
    all: SplitStats
    train_test: TrainTest
    method: dict[str, str]
    eval_prompts: NotRequired[TemplateReuse]


@dataclass
class StructuralAudit:
    """table2.json: per-split structure, duplication, train/test leakage, answer diversity."""

    train: SplitStats
    test: SplitStats
    all: SplitStats  # both splits pooled: the paper's numbers
    train_test: TrainTest
    method: dict[str, str]  # how each number is computed, after the author's script
    eval_prompts: TemplateReuse | None = None  # the evaluation draw's prompts found in train

    def split(self, name: str) -> SplitStats:
        return {"train": self.train, "test": self.test, "all": self.all}[name]

    def to_json(self) -> StructuralAuditJson:
        out: StructuralAuditJson = {"train": self.train, "test": self.test, "all": self.all,
                                    "train_test": self.train_test, "method": self.method}
        if self.eval_prompts is not None:
            out["eval_prompts"] = self.eval_prompts
        return out

    @classmethod
    def from_json(cls, d: StructuralAuditJson) -> StructuralAudit:
        return cls(train=d["train"], test=d["test"], all=d["all"], train_test=d["train_test"],
                   method=d["method"], eval_prompts=d.get("eval_prompts"))


# --- per-record views (evaluate_dataset.load_dataset_records) ---


def turns(record: Any) -> list[Any]:
    """`row.get("conversations", [])`, anything but a list read as []."""
    conv = record.get("conversations", []) if isinstance(record, dict) else []
    return conv if isinstance(conv, list) else []


def _dict_turns(record: Any) -> list[dict]:
    return [t for t in turns(record) if isinstance(t, dict)]


def normalize_text(text: str) -> str:
    """evaluate_dataset.normalize_text: lowercase, collapse whitespace, drop other characters."""
    text = re.sub(r"\s+", " ", text.lower())
    return _NOT_KEPT.sub("", text).strip()


def conversation_text(record: Any) -> str:
    """evaluate_dataset.conversation_to_text: `role: value` per turn, stripped, joined by newlines.

    This is the TF-IDF document, the distinct-n text and (normalised) the duplicate key.
    """
    return "\n".join(
        f"{str(t.get('from', '')).strip()}: {str(t.get('value', '')).strip()}"
        for t in _dict_turns(record)
    )


def schema_ok(record: Any) -> bool:
    """load_dataset_records' valid_schema: a non-empty list of dicts holding `from` and `value`."""
    conv = turns(record)
    return bool(conv) and all(isinstance(t, dict) and "from" in t and "value" in t for t in conv)


def roles(record: Any) -> list[str]:
    return [str(t.get("from", "")).strip() for t in _dict_turns(record)]


def role_alternation_ok(record: Any) -> bool:
    """load_dataset_records' role_alternation_ok: no two consecutive turns share a role.

    The author does not ask that the first turn be human nor that roles be human/assistant;
    the data stage asks both before training.
    """
    r = roles(record)
    return bool(r) and all(r[i] != r[i - 1] for i in range(1, len(r)))


def empty_values(record: Any) -> int:
    """load_dataset_records' empty_values: turns whose `str(value)` is blank after strip.

    Only `value` is counted, not `from`; a missing value is "" (empty), a None value is "None"
    (not empty), as `str(t.get("value", ""))` makes them.
    """
    return sum(not str(t.get("value", "")).strip() for t in _dict_turns(record))


# --- statistics ---


def mean_sd(values: list[int] | list[float]) -> dict[str, float | None]:
    """evaluate_dataset.mean_sd: statistics.mean and the sample SD (statistics.stdev), 0.0 for
    a single value."""
    if not values:
        return {"mean": None, "sd": None, "min": None, "max": None}
    return {
        "mean": statistics.mean(values),
        "sd": statistics.stdev(values) if len(values) > 1 else 0.0,
        "min": min(values),
        "max": max(values),
    }


def tokenize(text: str) -> list[str]:
    """evaluate_dataset.tokenize: `\\b\\w+\\b` over the lowercased text (punctuation dropped)."""
    return re.findall(r"\b\w+\b", text.lower())


def distinct_n(texts: list[str], n: int) -> float:
    """evaluate_dataset.distinct_n: unique / total n-grams over the texts, never crossing a text;
    0.0 when there are none. The author passes whole role-prefixed conversations."""
    total = 0
    unique: set[tuple[str, ...]] = set()
    for text in texts:
        toks = tokenize(text)
        grams = list(zip(*(toks[i:] for i in range(n)), strict=False)) if len(toks) >= n else []
        total += len(grams)
        unique.update(grams)
    return len(unique) / total if total else 0.0


def exact_duplicates(records: list[Any]) -> dict[str, int]:
    """evaluate_dataset.exact_duplicate_analysis: records grouped by normalised conversation
    text; groups of more than one, and the records in them (every copy, the first included)."""
    by_text = Counter(normalize_text(conversation_text(r)) for r in records)
    groups = [c for c in by_text.values() if c > 1]
    return {"groups": len(groups), "records": sum(groups)}


def train_test_overlap(train: list[Any], test: list[Any]) -> int:
    """exact_duplicate_analysis' train_test_exact_overlap_count: distinct normalised texts found in
    both splits (a text twice in train and once in test counts once)."""
    norms = [{normalize_text(conversation_text(r)) for r in split} for split in (train, test)]
    return len(norms[0] & norms[1])


def assistant_responses(records: list[Any], split: str) -> dict[str, list[str]]:
    """evaluate_dataset.repeated_assistant_analysis: normalised assistant values (turns with
    `from` exactly "assistant"), empty ones left out, with their locations."""
    responses: dict[str, list[str]] = defaultdict(list)
    for i, record in enumerate(records):
        for j, turn in enumerate(turns(record)):
            if isinstance(turn, dict) and turn.get("from") == "assistant":
                norm = normalize_text(str(turn.get("value", "")))
                if norm:
                    responses[norm].append(f"{split}[{i}].turn{j}")
    return responses


def repeated_answers(responses: dict[str, list[str]]) -> RepeatedAnswers:
    """Groups of a normalised answer seen more than once (case and punctuation ignored)."""
    repeated = {k: v for k, v in responses.items() if len(v) > 1}
    return {
        "unique": len(responses),
        "groups": len(repeated),
        "instances": sum(len(v) for v in repeated.values()),
        "locations": [v for v in repeated.values()][:10],
    }


# --- per split (evaluate_dataset.structural_analysis, applied to one split or to both) ---


def split_stats(records: list[Any], split: str) -> SplitStats:
    """Every per-split row of Table 2. The author computes turn statistics per split and the rest
    over both splits together; here every row is computed for train, test and "all" (both), so
    the paper's pooled numbers are the "all" column."""
    n = len(records)
    schema = sum(schema_ok(r) for r in records)
    alternation = sum(role_alternation_ok(r) for r in records)
    valid = sum(schema_ok(r) and role_alternation_ok(r) for r in records)
    all_roles = [role for r in records for role in roles(r)]
    # turn counts over every record, valid or not: the author's turn_count is len(conv)
    turn_counts = [len(turns(r)) for r in records]
    turn = mean_sd(turn_counts)
    dups = exact_duplicates(records)
    texts = [conversation_text(r) for r in records]
    repeated = repeated_answers(assistant_responses(records, split))
    return {
        "n_conversations": n,
        "schema_valid": schema,
        "role_alternation_ok": alternation,
        "schema_pass_rate": schema / n if n else None,
        "role_alternation_pass_rate": alternation / n if n else None,
        "n_invalid": n - valid,
        "valid_rate": valid / n if n else None,  # both of the author's checks pass
        "empty_fields": sum(empty_values(r) for r in records),
        "user_turns": all_roles.count("human"),
        "assistant_turns": all_roles.count("assistant"),
        "turns_mean": turn["mean"],
        "turns_sd": turn["sd"],
        "turns_min": turn["min"],
        "turns_max": turn["max"],
        "turns_histogram": {str(k): v for k, v in sorted(Counter(turn_counts).items())},
        "exact_duplicate_groups": dups["groups"],
        "exact_duplicate_conversations": dups["records"],
        "distinct_1": distinct_n(texts, 1),
        "distinct_2": distinct_n(texts, 2),
        "unique_assistant_responses": repeated["unique"],
        "repeated_answer_groups": repeated["groups"],
        "repeated_answer_instances": repeated["instances"],
    }


# --- train/test comparisons (evaluate_dataset.near_duplicate_analysis) ---


def tfidf_max_similarity(train_texts: list[str], test_texts: list[str]) -> np.ndarray:
    """For each test document, its highest TF-IDF cosine similarity to any train document.

    As the author: the vectoriser is fitted on train + test, `cosine_similarity` of each test
    row with every train row, the row maximum. Taken in blocks of test rows so memory stays
    bounded; each row's values do not depend on the block. A vocabulary left empty (every
    document blank or only stop words; the author's script would crash) gives 0.
    """
    if not train_texts or not test_texts:
        return np.full(len(test_texts), np.nan)
    try:
        matrix = TfidfVectorizer(**TFIDF_PARAMS).fit_transform(train_texts + test_texts)
    except ValueError:
        return np.zeros(len(test_texts))
    train_m, test_m = matrix[: len(train_texts)], matrix[len(train_texts) :]
    best = np.empty(len(test_texts))
    for start in range(0, len(test_texts), SIM_CHUNK_ROWS):
        block = cosine_similarity(test_m[start : start + SIM_CHUNK_ROWS], train_m)
        best[start : start + block.shape[0]] = block.max(axis=1)
    return best


def near_duplicates(train: list[Any], test: list[Any], threshold: float) -> NearDuplicates:
    """near_duplicate_analysis: test conversations whose best train match is >= threshold (as a
    count and a percentage of test), and the max-similarity mean, sample SD, min and max."""
    sims = tfidf_max_similarity([conversation_text(r) for r in train],
                                [conversation_text(r) for r in test])  # fmt: skip
    scores = [float(s) for s in sims if not np.isnan(s)]
    stats = mean_sd(scores)
    pairs = sum(s >= threshold for s in scores)
    return {
        "near_dup_threshold": threshold,
        "near_dup_test_conversations": pairs,
        "near_dup_test_percent": 100 * pairs / len(scores) if scores else None,
        "max_sim_mean": stats["mean"],
        "max_sim_sd": stats["sd"],
        "max_sim_min": stats["min"],
        "max_sim_max": stats["max"],
    }


def first_human_turn(record: Any) -> str | None:
    t = turns(record)
    if t and isinstance(t[0], dict) and t[0].get("from") == "human":
        value = t[0].get("value")
        return value.strip() if isinstance(value, str) else None
    return None


def template_reuse(train: list[Any], test: list[Any]) -> TemplateReuse:
    """Test prompts (first human turn) that occur verbatim in train: not in the author's script
    (the paper's "most of the 50 eval prompts have an identical question string in train").

    Counted twice because "identical question string" is ambiguous: against train's first
    human turns, and against any human turn in train.
    """
    train_first = {first_human_turn(r) for r in train} - {None}
    train_any = {str(t.get("value", "")).strip() for r in train for t in _dict_turns(r)
                 if t.get("from") == "human"}  # fmt: skip
    prompts = [first_human_turn(r) for r in test]
    return {
        "test_prompts": sum(p is not None for p in prompts),
        "test_prompts_in_train_first_human": sum(p in train_first for p in prompts if p),
        "test_prompts_in_train_any_human": sum(p in train_any for p in prompts if p),
    }


def structural_audit(
    train: list[Any], test: list[Any], near_dup_threshold: float = 0.9
) -> StructuralAudit:
    """Table 2: per-split structure, duplication, train/test leakage and answer diversity."""
    stats = {"train": split_stats(train, "train"), "test": split_stats(test, "test"),
             "all": split_stats(train + test, "all")}  # fmt: skip
    # Where the pooled repeated answers lie (the paper says none in test, the author's metrics
    # file lists one group in test): groups with an instance in each split, and those instances.
    pooled = {s: assistant_responses(recs, s) for s, recs in (("train", train), ("test", test))}
    merged: dict[str, list[str]] = defaultdict(list)
    for responses in pooled.values():
        for text, where in responses.items():
            merged[text] += where
    stats["all"]["repeated_answer_locations"] = repeated_answers(merged)["locations"]
    for split, responses in pooled.items():
        shared = [text for text in responses if len(merged[text]) > 1]
        stats[split]["repeated_answer_groups_pooled"] = len(shared)
        stats[split]["repeated_answer_instances_pooled"] = sum(len(responses[t]) for t in shared)
    for key in ("groups", "instances"):
        stats["all"][f"repeated_answer_{key}_pooled"] = stats["all"][f"repeated_answer_{key}"]
    cross: TrainTest = {
        "train_test_exact_overlap": train_test_overlap(train, test),
        **near_duplicates(train, test, near_dup_threshold),
        **template_reuse(train, test),
    }
    return StructuralAudit(train=stats["train"], test=stats["test"], all=stats["all"],
                           train_test=cross, method=METHOD)


METHOD = {
    "source": "the author's scripts/eval/evaluate_dataset.py, function by function",
    "document": "conversation_to_text: 'role: value' per turn, stripped, newline-joined",
    "sd": "sample SD (statistics.stdev), as evaluate_dataset.mean_sd",
    "turn_stats_over": "every conversation of the split (len of the conversation list)",
    "validity": "schema: non-empty list of dicts with from+value; alternation: no two "
                "consecutive turns share a role",
    "empty_fields": "values blank after str().strip(); 'from' is not counted",
    "duplicates": "normalize_text of the document; groups of >1 and the records in them",
    "train_test_overlap": "distinct normalised documents in both splits",
    "tfidf": "TfidfVectorizer(lowercase, ngram_range=(1, 2), min_df=1, max_features=50000, "
             "stop_words='english') fit on train+test; cosine_similarity; row max",
    "distinct_n": "\\b\\w+\\b tokens of the lowercased documents, per conversation, pooled",
    "repeated_answers": "normalize_text of assistant values (case, punctuation ignored), "
                        "empty ones left out",
}  # fmt: skip


# --- rendering ---


def _fmt(value: Any) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, dict):
        return ", ".join(f"{k}: {v}" for k, v in value.items()) or "none"
    if isinstance(value, list):
        return f"{len(value)} shown in table2.json"
    if isinstance(value, float):
        return f"{value:.4f}"
    return str(value)


def render_markdown(audit: StructuralAudit) -> str:
    """Two tables a reviewer can read: per-split rows, then train/test rows, then the method."""
    lines = ["Table 2 (structural dataset audit)", "", "| metric | train | test | all |"]
    lines.append("|---|---|---|---|")
    for key in audit.all:
        row = [_fmt(audit.split(s).get(key)) for s in SPLITS]
        lines.append(f"| {key} | " + " | ".join(row) + " |")
    lines += ["", "| train/test metric | value |", "|---|---|"]
    lines += [f"| {k} | {_fmt(v)} |" for k, v in audit.train_test.items()]
    lines += ["", "Method:"] + [f"- {k}: {v}" for k, v in audit.method.items()]
    return "\n".join(lines) + "\n"
