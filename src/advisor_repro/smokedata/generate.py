"""Offline datasets in the paper's record format, built from a fictional university's handbook.

Two products, both deterministic per seed (only `random.Random(seed)` instances, never the
global generator):

- `smoke_dataset`: a small set built like the paper's pipeline (template questions crossed with
  home countries, programmes and topics; answers that state handbook facts), with factual errors
  planted at a known rate and labelled, so the audits can be tested against ground truth.
- `standin_dataset`: a stand-in of the paper's size and shape (2,274 / 402 conversations, 4-6
  turns with mean 5.19 and sd 0.98, answers of 100-300 words) for tests and GPU rehearsals
  that must not download the real dataset.
"""

from __future__ import annotations

import json
import random
import tomllib
from importlib import resources
from pathlib import Path
from typing import TypedDict

from advisor_repro.errors import ConfigError
from advisor_repro.files import atomic_write_bytes, atomic_write_text

# The paper's record format: one conversation of alternating turns ("from" is a keyword,
# hence the functional form)
Turn = TypedDict("Turn", {"from": str, "value": str})


class Record(TypedDict):
    conversations: list[Turn]


class Label(TypedDict):
    """A planted wrong value in one conversation: the answer's turn and what it states."""

    turn: int
    fact_id: str
    claimed: str  # the wrong value the answer states
    true: str
    error_class: str


class PlantedError(TypedDict):
    """A planted wrong value: its split, record and turn (data/planted_errors.jsonl)."""

    split: str
    index: int
    turn: int
    fact_id: str
    claimed: str  # the wrong value the answer states
    true: str
    error_class: str


class Institution(TypedDict):
    name: str
    short: str
    city: str
    country: str
    fictional: bool
    note: str


class ErrorClass(TypedDict):
    description: str
    paper_example: str
    in_paper: bool


class Vocabulary(TypedDict):
    countries: list[str]
    programmes: list[str]
    openers: list[str]
    followups: list[str]
    intros: list[str]
    advice: list[str]


class Fact(TypedDict):
    id: str
    topic: str
    title: str
    true_value: str
    wrong_values: list[str]
    error_class: str
    statement: str  # template: {value} and the slots
    questions: list[str]


class Handbook(TypedDict):
    """handbook.toml, table for table."""

    institution: Institution
    error_classes: dict[str, ErrorClass]
    vocabulary: Vocabulary
    facts: list[Fact]


# --- shape of the paper's dataset (PAPER.md, "Data") ---
# With only 4, 5 or 6 turns, a mean of 5.19 allows an sd of at most 0.982, reached with no
# 5-turn conversations; the paper's sd 0.98 therefore means almost every conversation has 4 or
# 6 turns. These shares give mean 5.19 and sd 0.980.
TURN_SHARES: dict[int, float] = {4: 0.403, 5: 0.004, 6: 0.593}
ANSWER_WORDS: tuple[int, int] = (100, 300)  # stand-in assistant answer length, words
FORMATS: tuple[str, ...] = ("jsonl", "parquet")


def handbook() -> Handbook:
    """The fictional university's facts, parsed fresh each call so callers may mutate them."""
    res = resources.files("advisor_repro.smokedata").joinpath("handbook.toml")
    doc: Handbook = tomllib.loads(res.read_text(encoding="utf-8"))
    return doc


def _turn_counts(rng: random.Random, n: int) -> list[int]:
    """Turn counts in exact shares (largest remainder), shuffled.

    Exact shares rather than independent draws, so a 20-conversation split still has the
    paper's mean instead of a noisy one.
    """
    quotas = {t: n * share for t, share in TURN_SHARES.items()}
    counts = {t: int(q) for t, q in quotas.items()}
    by_remainder = sorted(quotas, key=lambda t: quotas[t] - counts[t], reverse=True)
    for t in by_remainder[: n - sum(counts.values())]:
        counts[t] += 1
    out = [t for t, c in counts.items() for _ in range(c)]
    rng.shuffle(out)
    return out


def _slots(hb: Handbook, rng: random.Random) -> dict[str, str]:
    """One student's values for the templates: the paper crossed templates with such values."""
    inst, voc = hb["institution"], hb["vocabulary"]
    return {
        "country": rng.choice(voc["countries"]),
        "programme": rng.choice(voc["programmes"]),
        "short": inst["short"],
        "city": inst["city"],
    }


def _question(
    rng: random.Random, hb: Handbook, fact: Fact, slots: dict[str, str], first: bool
) -> str:
    """A human turn: an opener (first turn) or a short follow-up phrase, then a template."""
    lead = rng.choice(hb["vocabulary"]["openers" if first else "followups"])
    return (lead + rng.choice(fact["questions"])).format_map(slots)


def _statement(fact: Fact, value: str, slots: dict[str, str]) -> str:
    """The fact's sentence with `value`, which may be the true or a planted wrong value."""
    return fact["statement"].format_map({**slots, "value": value})


def _as_record(turns: list[str]) -> Record:
    """Roles alternate from human, as in every record of the paper's dataset."""
    roles = ("human", "assistant")
    return {"conversations": [{"from": roles[i % 2], "value": t} for i, t in enumerate(turns)]}


# --- smoke dataset: short answers, planted errors ---


def _smoke_answer(
    rng: random.Random, hb: Handbook, fact: Fact, value: str, slots: dict[str, str]
) -> str:
    """A short markdown answer: heading, optional intro, the fact, one or two tips."""
    voc = hb["vocabulary"]
    lines = [f"### {fact['title']}", ""]
    intro = rng.choice(voc["intros"]).format_map(slots)
    if intro:
        lines += [intro, ""]
    lines.append("- " + _statement(fact, value, slots))
    tips = rng.sample(voc["advice"], rng.randint(1, 2))
    lines += ["- " + tip.format_map(slots) for tip in tips]
    return "\n".join(lines)


def _smoke_conversation(
    rng: random.Random, hb: Handbook, n_turns: int, wrong: set[int]
) -> tuple[Record, list[Label]]:
    """One conversation of `n_turns`; answers whose pair index is in `wrong` carry an error.

    Returns the record and its labels (without split and index, which the caller knows).
    """
    slots = _slots(hb, rng)
    facts = rng.sample(hb["facts"], (n_turns + 1) // 2)
    turns: list[str] = []
    labels: list[Label] = []
    for pair, fact in enumerate(facts):
        turns.append(_question(rng, hb, fact, slots, first=pair == 0))
        if len(turns) == n_turns:
            break  # odd counts end on a human turn, as in the paper's 5-turn records
        value = fact["true_value"]
        if pair in wrong:
            value = rng.choice(fact["wrong_values"])
            labels.append(
                {
                    "turn": len(turns),
                    "fact_id": fact["id"],
                    "claimed": value,
                    "true": fact["true_value"],
                    "error_class": fact["error_class"],
                }
            )
        turns.append(_smoke_answer(rng, hb, fact, value, slots))
    return _as_record(turns), labels


def smoke_dataset(
    seed: int = 42, n_train: int = 100, n_test: int = 20, error_rate: float = 0.3
) -> tuple[dict[str, list[Record]], list[PlantedError]]:
    """A small dataset with labelled planted errors: ground truth for the audits.

    Exactly round(error_rate * answers) assistant answers per split state a wrong handbook value
    in place of the true one (the paper's training-data audit found 27.5-40%). Returns
    ({"train": [...], "test": [...]}, planted), one label per planted error.
    """
    if not 0.0 <= error_rate <= 1.0:
        raise ConfigError(f"error_rate must be in [0, 1], got {error_rate}", "e.g. 0.3")
    if n_train < 0 or n_test < 0:
        raise ConfigError(f"split sizes must be >= 0, got {n_train} / {n_test}")
    hb = handbook()
    rng = random.Random(seed)
    splits: dict[str, list[Record]] = {}
    planted: list[PlantedError] = []
    for split, n in (("train", n_train), ("test", n_test)):
        counts = _turn_counts(rng, n)
        answers = [(i, pair) for i, t in enumerate(counts) for pair in range(t // 2)]
        wrong = rng.sample(answers, round(error_rate * len(answers)))
        splits[split] = []
        for i, n_turns in enumerate(counts):
            pairs = {pair for j, pair in wrong if j == i}
            record, labels = _smoke_conversation(rng, hb, n_turns, pairs)
            splits[split].append(record)
            planted += [{"split": split, "index": i, **label} for label in labels]
    return splits, planted


# --- stand-in dataset: the paper's size and shape, true facts only ---


def _standin_answer(rng: random.Random, hb: Handbook, fact: Fact, slots: dict[str, str]) -> str:
    """A markdown answer of 100-300 words: the fact, related facts, then tips up to a length.

    Lengths vary (triangular, mode 170 words) so length-sensitive code sees a spread.
    """
    voc = hb["vocabulary"]
    target = round(rng.triangular(110, 280, 170))
    others = [f for f in hb["facts"] if f["id"] != fact["id"]]
    related = [_statement(f, f["true_value"], slots) for f in rng.sample(others, len(others))]
    tips = [tip.format_map(slots) for tip in rng.sample(voc["advice"], len(voc["advice"]))]
    intro = rng.choice([i for i in voc["intros"] if i]).format_map(slots)
    lines = [
        f"### {fact['title']}",
        "",
        intro,
        "",
        "- " + _statement(fact, fact["true_value"], slots),
    ]
    sections = [("#### Related facts", related[:3]), ("#### Tips", tips + related[3:])]
    words = len(" ".join(lines).split())
    for header, sentences in sections:
        lines += ["", header]
        words += 2
        for sentence in sentences:
            if words >= target:
                break
            lines.append("- " + sentence)
            words += 1 + len(sentence.split())
    while words > ANSWER_WORDS[1] or lines[-1].startswith("#") or not lines[-1]:
        words -= len(lines.pop().split())  # over the cap only by the last line, so rest >= 100
    return "\n".join(lines)


def _standin_conversation(rng: random.Random, hb: Handbook, n_turns: int) -> Record:
    """One stand-in conversation: short questions, long markdown answers."""
    slots = _slots(hb, rng)
    turns: list[str] = []
    for pair, fact in enumerate(rng.sample(hb["facts"], (n_turns + 1) // 2)):
        turns.append(_question(rng, hb, fact, slots, first=pair == 0))
        if len(turns) < n_turns:
            turns.append(_standin_answer(rng, hb, fact, slots))
    return _as_record(turns)


def standin_dataset(
    seed: int = 0, n_train: int = 2274, n_test: int = 402
) -> dict[str, list[Record]]:
    """A dataset of the paper's size and shape, so rehearsals need no download."""
    hb = handbook()
    rng = random.Random(seed)
    return {
        split: [_standin_conversation(rng, hb, t) for t in _turn_counts(rng, n)]
        for split, n in (("train", n_train), ("test", n_test))
    }


# --- writing ---


def _parquet_bytes(records: list[Record]) -> bytes:
    """Parquet with an explicit schema, matching the Hub dataset and valid for an empty split."""
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError as exc:
        raise ConfigError(
            "writing parquet needs pyarrow", "pip install pyarrow, or use jsonl"
        ) from exc
    turn = pa.struct([("from", pa.string()), ("value", pa.string())])
    schema = pa.schema([("conversations", pa.list_(turn))])
    sink = pa.BufferOutputStream()
    pq.write_table(pa.Table.from_pylist(records, schema=schema), sink)
    return sink.getvalue().to_pybytes()


def write_splits(splits: dict[str, list[Record]], folder: Path, fmt: str = "jsonl") -> None:
    """Write each split to `folder/<split>.<fmt>` atomically, so a crash leaves no half file."""
    if fmt not in FORMATS:
        raise ConfigError(f"unknown dataset format {fmt!r}", f"use one of {', '.join(FORMATS)}")
    for name, records in splits.items():
        path = Path(folder) / f"{name}.{fmt}"
        if fmt == "jsonl":
            text = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records)
            atomic_write_text(path, text)
        else:
            atomic_write_bytes(path, _parquet_bytes(records))
