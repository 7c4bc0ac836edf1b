"""The audits' pure core: the factuality catalog, the training-answer draw, abstentions, and the
counting (rates with Wilson intervals, precision / recall against ground truth).

The catalog is artifacts/factuality_catalog.toml for the paper profile, or, for the smoke
profile ("builtin:smoke"), built from the fictional handbook: every planted wrong value is a
catalogued claim, its true value the fact, and the wrong value itself a `marker` whose
presence in a text is the ground truth that the claim is made there.
"""

from __future__ import annotations

import random
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, NotRequired, TypedDict

from advisor_repro.errors import ConfigError
from advisor_repro.files import canonical_json, sha256_text
from advisor_repro.smokedata.generate import Record

if TYPE_CHECKING:
    from advisor_repro.evaluation.embeddings import Embedder
    from advisor_repro.judges.cache import CachedJudge

REPO_ROOT = Path(__file__).resolve().parents[3]
ABSTENTION_WINDOW = 300  # characters at the start of an answer searched for a refusal
DEFAULT_ABSTENTIONS = ("i am not sure", "i'm not sure", "i don't know", "i do not know",
                       "i cannot provide", "i can't provide", "i am unable to", "as an ai")
SEVERITY = {"admission_requirement": "high", "policy_eligibility": "high",
            "nonexistent_programme": "medium", "invented_scholarship": "medium",
            "wrong_figure": "low"}


class Rate(TypedDict):
    """k of n with the Wilson 95% interval; rate and interval None when n is 0."""

    k: int
    n: int
    rate: float | None
    wilson95: list[float] | None


class PrecisionRecall(TypedDict):
    n: int
    tp: int
    fp: int
    fn: int
    tn: int
    precision: float | None
    recall: float | None


class Prompt(TypedDict):
    """An evaluation prompt as the audits read it (data/eval_prompts.jsonl)."""

    sample_id: int | str
    dataset_index: int
    prompt: str
    reference: str | None


class AnswerVerdict(TypedDict):
    """The judge's answer check on one answer (rubric.AnswerCheck when it parsed) and the
    reply's bookkeeping: a findings row's common part."""

    status: str
    attempts: int
    cache_key: str
    verdict: NotRequired[str]  # hard | medium | fine, when the reply parsed
    claim: NotRequired[str]
    abstained: NotRequired[bool]
    note: NotRequired[str]
    errors: NotRequired[list[str]]
    raw: NotRequired[str]


class Provenance(TypedDict):
    """Who judged and embedded: keys of both audit summaries."""

    judge: dict[str, Any]  # the judge backend's identity, as advisor_repro.judges gives it
    calls: dict[str, int]  # paid / cached
    asking: dict[str, Any]  # how the replies were asked (CachedJudge.asking)
    embedding: dict[str, str | None]  # model, revision


@dataclass(frozen=True)
class Judging:
    """What an audit asks with: the judge, the embedder, and how often a malformed reply is
    asked again."""

    judge: CachedJudge
    emb: Embedder
    parse_retries: int

    def provenance(self) -> Provenance:
        """Who judged and embedded, as both audit summaries record it."""
        j = self.judge
        return {"judge": j.identity, "calls": {"paid": j.calls, "cached": j.hits},
                "asking": j.asking(),
                "embedding": {"model": self.emb.name, "revision": self.emb.revision}}


class Draw(TypedDict):
    """One drawn training answer: the seed that drew it, its conversation and turn."""

    seed: int
    index: int
    turn: int


@dataclass(frozen=True)
class Claim:
    id: str
    kind: str  # "model_error" | "training_error"
    claim: str  # the wrong statement
    fact: str  # what is true instead
    source_url: str
    severity: str
    error_class: str
    dataset_index: int | None = None  # the eval prompt it was found on; None = any prompt
    prompt: str = ""
    model: str = "ft"
    traces: str = ""  # training_error: the model error of the same class
    marker: str = ""  # smoke only: substring that proves the claim is made

    def source(self) -> str:
        return self.source_url or "no source cited"


@dataclass(frozen=True)
class Catalog:
    name: str
    sha256: str
    claims: list[Claim]  # model errors to look for in this run's answers
    training_claims: list[Claim]  # their counterparts in the training data
    notes: list[str]  # source notes shown to the judge
    abstention: tuple[str, ...] = field(default=DEFAULT_ABSTENTIONS)


def _smoke_catalog() -> Catalog:
    from advisor_repro.smokedata import handbook

    hb = handbook()
    inst = hb["institution"]
    slots = {"short": inst["short"], "city": inst["city"], "country": "your country",
             "programme": "programme"}
    claims, notes = [], []
    for fact in hb["facts"]:
        true = fact["statement"].format_map({**slots, "value": fact["true_value"]})
        notes.append(f"{true} (handbook: {fact['id']})")
        for k, wrong in enumerate(fact["wrong_values"]):
            claims.append(Claim(
                id=f"{fact['id']}:{k}",
                kind="model_error",
                claim=fact["statement"].format_map({**slots, "value": wrong}),
                fact=true,
                source_url=f"handbook.toml#{fact['id']}",
                severity=SEVERITY[fact["error_class"]],
                error_class=fact["error_class"],
                marker=wrong,
            ))
    sha = sha256_text(canonical_json(hb))
    training = [Claim(**{**c.__dict__, "kind": "training_error", "traces": c.id}) for c in claims]
    return Catalog("builtin:smoke", sha, claims, training, notes)


def load_catalog(name: str) -> Catalog:
    if name == "builtin:smoke":
        return _smoke_catalog()
    path = Path(name) if Path(name).is_absolute() else REPO_ROOT / name
    if not path.is_file():
        raise ConfigError(f"audit.catalog: no catalog at {path}",
                          "point audit.catalog at a TOML catalog, or use 'builtin:smoke'")
    raw = tomllib.loads(path.read_text(encoding="utf-8"))
    fields = set(Claim.__dataclass_fields__)

    def claims(key: str) -> list[Claim]:
        out = []
        for i, c in enumerate(raw.get(key, [])):
            extra = set(c) - fields - {"release_sample_id", "source_from"}
            if extra:
                raise ConfigError(f"{path}: [[{key}]] #{i + 1} has unknown keys {sorted(extra)}",
                                  f"known keys: {', '.join(sorted(fields))}")
            out.append(Claim(**{k: v for k, v in c.items() if k in fields}))
        return out

    notes = [n["text"] + (f" ({n['source_url']})" if n.get("source_url") else "")
             for n in raw.get("notes", [])]
    phrases = tuple(raw.get("abstention", {}).get("phrases", DEFAULT_ABSTENTIONS))
    return Catalog(name, sha256_text(path.read_text(encoding="utf-8")), claims("claims"),
                   claims("training_claims"), notes, phrases)


def catalog_inputs(name: str) -> dict[str, str]:
    """The catalog as an outside input of the audit stages: editing it makes them stale."""
    if name == "builtin:smoke":
        from advisor_repro.smokedata import handbook

        return {"catalog": sha256_text(canonical_json(handbook()))}
    path = Path(name) if Path(name).is_absolute() else REPO_ROOT / name
    return {"catalog": sha256_text(path.read_text(encoding="utf-8")) if path.is_file()
            else "missing"}


def applies(claim: Claim, dataset_index: int) -> bool:
    """A claim tied to a prompt is looked for there only; an untied one everywhere."""
    return claim.dataset_index is None or claim.dataset_index == dataset_index


def abstained(text: str, phrases: tuple[str, ...]) -> bool:
    """The answer opens by declining or deferring (a phrase within its first 300 chars)."""
    head = text[:ABSTENTION_WINDOW].lower().replace("\u2019", "'")
    return any(p in head for p in phrases)


def makes_marker(text: str, marker: str) -> bool:
    return bool(marker) and marker.lower() in text.lower()


def rate(k: int, n: int) -> Rate:
    """k of n with the Wilson 95% interval (None when n is 0)."""
    from advisor_repro.stats import wilson

    if n == 0:
        return {"k": k, "n": 0, "rate": None, "wilson95": None}
    lo, hi = wilson(k, n)
    return {"k": k, "n": n, "rate": k / n, "wilson95": [lo, hi]}


def precision_recall(predicted: list[bool], truth: list[bool]) -> PrecisionRecall:
    tp = sum(p and t for p, t in zip(predicted, truth, strict=True))
    fp = sum(p and not t for p, t in zip(predicted, truth, strict=True))
    fn = sum(t and not p for p, t in zip(predicted, truth, strict=True))
    return {
        "n": len(truth), "tp": tp, "fp": fp, "fn": fn, "tn": len(truth) - tp - fp - fn,
        "precision": tp / (tp + fp) if tp + fp else None,
        "recall": tp / (tp + fn) if tp + fn else None,
    }


def answer_pool(train: list[Record]) -> list[tuple[int, int]]:
    """(conversation index, turn index) of every assistant answer in the training split."""
    return [
        (i, t)
        for i, rec in enumerate(train)
        for t, turn in enumerate(rec["conversations"])
        if turn["from"] == "assistant"
    ]


def draw_training_sample(
    train: list[Record], n: int, seeds: list[int]
) -> list[Draw]:
    """n answers in equal parts per seed: random.Random(seed).sample of the answers not drawn
    by an earlier seed, so the parts never overlap (the paper: 40 = two seeds of 20)."""
    pool = answer_pool(train)
    per_seed = n // len(seeds)
    picked: list[Draw] = []
    for seed in seeds:
        taken = {(p["index"], p["turn"]) for p in picked}
        left = [a for a in pool if a not in taken]
        if per_seed > len(left):
            raise ConfigError(
                f"audit.training_sample asks for {per_seed} answers per seed, "
                f"only {len(left)} are left",
                "lower audit.training_sample",
            )
        picked += [{"seed": seed, "index": i, "turn": t}
                   for i, t in random.Random(seed).sample(left, per_seed)]
    return picked
