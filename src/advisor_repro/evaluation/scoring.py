"""The reference metrics of the `metrics` stage, on records: both models' answers paired by
prompt and cap (refusing a missing or stray one), every metric of every answer (BERTScore in
one call), each cap's summary with bootstrap CIs, the per-item rows and the settings recorded
beside them. The metric functions themselves are metrics.py's."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypedDict

from advisor_repro.config import Metrics
from advisor_repro.errors import DataError
from advisor_repro.evaluation import metrics as m
from advisor_repro.evaluation.generation import AnswerRow, EvalPrompt, SampleId
from advisor_repro.manifest import library_versions

MODELS = ("base", "ft")

Pair = tuple[SampleId, AnswerRow, AnswerRow]  # (sample_id, base answer, ft answer)
ItemKey = tuple[int, str, SampleId]  # (cap, model, sample_id)


class ItemScores(TypedDict):
    rouge_l_f1: float
    bertscore_p: float
    bertscore_r: float
    bertscore_f1: float


class PerItemRow(ItemScores):
    """A line of metrics/per_item.jsonl: one answer's scores and lengths."""

    sample_id: SampleId
    model: str
    cap: int
    chars: int
    new_tokens: int
    truncated: bool


@dataclass(frozen=True)
class Scored:
    """Every answer's scores, each (cap, model)'s corpus BLEU, BERTScore's hash string."""

    items: dict[ItemKey, ItemScores]
    bleu: dict[tuple[int, str], m.Bleu]
    bertscore_hash: str


class SacreBleuCell(TypedDict):
    base: float
    ft: float
    delta: float
    signature: str


class CapSummary(TypedDict):
    """One cap's block of metrics/summary.json ("256", "512", ...)."""

    n: int
    sacrebleu: SacreBleuCell
    rouge_l_f1: dict[str, float]  # metrics.compare: base, ft, delta, ci_low, ci_high
    bertscore_f1: dict[str, float]
    bertscore_p: dict[str, float]
    bertscore_r: dict[str, float]
    truncation_rate: dict[str, float]  # per model
    mean_chars: dict[str, float]
    mean_tokens: dict[str, float]


class BertScoreSettings(TypedDict):
    model: str
    num_layers: int | None
    lang: str
    rescale_with_baseline: bool
    hash: str | None


class RougeSettings(TypedDict):
    variant: str
    use_stemmer: bool


class BootstrapSettings(TypedDict):
    resamples: int
    seed: int
    percentiles: list[float]
    method: str


class MetricSettings(TypedDict):
    """The settings recorded beside the numbers in metrics/summary.json."""

    bertscore: BertScoreSettings
    rouge: RougeSettings
    bootstrap: BootstrapSettings
    normalisation: str
    versions: dict[str, str | None]


# metrics/summary.json: fixed keys, one CapSummary per cap under str(cap), the settings' keys
SummaryValue = (str | int | list[int] | CapSummary | BertScoreSettings | RougeSettings
                | BootstrapSettings | dict[str, str | None])
SETTINGS_KEYS = ("bertscore", "rouge", "bootstrap", "normalisation", "versions")


@dataclass
class MetricsSummary:
    """metrics/summary.json of a run: the caps, each cap's block, the settings."""

    origin: str  # "run" (the metrics stage)
    caps: list[int]
    n_items: int
    per_cap: dict[int, CapSummary]
    settings: MetricSettings

    def to_json(self) -> dict[str, SummaryValue]:
        out: dict[str, SummaryValue] = {"origin": self.origin, "caps": self.caps,
                                        "n_items": self.n_items}
        out.update({str(cap): block for cap, block in self.per_cap.items()})
        out.update(self.settings)
        return out

    @classmethod
    def from_json(cls, d: dict[str, SummaryValue]) -> MetricsSummary:
        caps = d["caps"]
        settings = {k: d[k] for k in SETTINGS_KEYS}
        return cls(origin=d["origin"], caps=caps, n_items=d["n_items"],
                   per_cap={c: d[str(c)] for c in caps}, settings=settings)


def pair_answers(
    answers: list[AnswerRow], prompts: dict[SampleId, EvalPrompt], source: str
) -> dict[int, list[Pair]]:
    """cap -> [(sample_id, base answer, ft answer)] in the prompts' order; refuses a cap where
    an answer is missing or belongs to no prompt."""
    by_key = {(a["sample_id"], a["model"], int(a["cap"])): a for a in answers}
    unknown = sorted({str(a["sample_id"]) for a in answers} - {str(s) for s in prompts})
    if unknown:
        raise DataError(
            f"{source}: answers for sample_id {', '.join(unknown[:5])} have no prompt in "
            "data/eval_prompts.jsonl",
            "rerun `repro generate` (the prompts changed after generation)",
        )
    out = {}
    for cap in sorted({int(a["cap"]) for a in answers}):
        missing = [f"{s}/{mod}" for s in prompts for mod in MODELS if (s, mod, cap) not in by_key]
        if missing:
            raise DataError(
                f"{source}: cap {cap} lacks answers for {', '.join(missing[:5])}"
                + (f" and {len(missing) - 5} more" if len(missing) > 5 else ""),
                "rerun `repro generate` to complete the answers",
            )
        out[cap] = [(s, by_key[(s, "base", cap)], by_key[(s, "ft", cap)]) for s in prompts]
    return out


def references(prompts: dict[SampleId, EvalPrompt]) -> dict[SampleId, str]:
    missing = [str(s) for s, p in prompts.items() if not isinstance(p.get("reference"), str)]
    if missing:
        raise DataError(
            f"data/eval_prompts.jsonl has no reference answer for sample_id "
            f"{', '.join(missing[:5])} (an imported release holds none: the paper did not "
            "release its reference file)",
            "run `repro data` for this profile's dataset, then `repro generate` and "
            "`repro metrics`; an imported run's metrics come from the released BERTScore file",
        )
    return {s: p["reference"] for s, p in prompts.items()}


def score_all(mc: Metrics, pairs: dict[int, list[Pair]], refs: dict[SampleId, str]) -> Scored:
    """Every metric for every (cap, model); BERTScore in one call (one model load)."""
    items = [(cap, mod, s, m.normalise(a["text"]), m.normalise(refs[s]))
             for cap, rows in pairs.items() for s, b, f in rows
             for mod, a in (("base", b), ("ft", f))]  # fmt: skip
    bs = m.bertscore([i[3] for i in items], [i[4] for i in items], mc.bertscore_model,
                     mc.bertscore_layers, mc.bertscore_lang, mc.bertscore_rescale)
    rouge = m.rouge_l_f1([i[3] for i in items], [i[4] for i in items], mc.rouge_stemmer)
    scores: dict[ItemKey, ItemScores] = {
        (cap, mod, s): {"rouge_l_f1": rouge[k], "bertscore_p": bs["p"][k],
                        "bertscore_r": bs["r"][k], "bertscore_f1": bs["f1"][k]}
        for k, (cap, mod, s, _, _) in enumerate(items)}  # fmt: skip
    bleu = {(cap, mod): m.sacrebleu_corpus([i[3] for i in items if i[:2] == (cap, mod)],
                                           [i[4] for i in items if i[:2] == (cap, mod)])
            for cap in pairs for mod in MODELS}  # fmt: skip
    return Scored(scores, bleu, bs["hash"])


def cap_summary(mc: Metrics, cap: int, rows: list[Pair], scored: Scored) -> CapSummary:
    b, f = scored.bleu[(cap, "base")], scored.bleu[(cap, "ft")]

    def compared(key: str) -> dict[str, float]:
        per = {mod: [scored.items[(cap, mod, s)][key] for s, _, _ in rows] for mod in MODELS}
        return m.compare(per["base"], per["ft"], mc.bootstrap_resamples, mc.bootstrap_seed)

    answers = {mod: [r[1] if mod == "base" else r[2] for r in rows] for mod in MODELS}
    return {
        "n": len(rows),
        "sacrebleu": {"base": b["score"], "ft": f["score"], "delta": f["score"] - b["score"],
                      "signature": b["signature"]},
        "rouge_l_f1": compared("rouge_l_f1"),
        "bertscore_f1": compared("bertscore_f1"),
        "bertscore_p": compared("bertscore_p"),
        "bertscore_r": compared("bertscore_r"),
        "truncation_rate": {mod: sum(bool(a["truncated"]) for a in answers[mod]) / len(rows)
                            for mod in MODELS},
        "mean_chars": {mod: sum(len(a["text"]) for a in answers[mod]) / len(rows)
                       for mod in MODELS},
        "mean_tokens": {mod: sum(a["new_tokens"] for a in answers[mod]) / len(rows)
                        for mod in MODELS},
    }  # fmt: skip


def per_item_rows(pairs: dict[int, list[Pair]], scored: Scored) -> list[PerItemRow]:
    rows: list[PerItemRow] = []
    for cap, triples in pairs.items():
        for s, b, f in triples:
            for mod, a in (("base", b), ("ft", f)):
                rows.append({"sample_id": s, "model": mod, "cap": cap,
                             **scored.items[(cap, mod, s)], "chars": len(a["text"]),
                             "new_tokens": a["new_tokens"], "truncated": bool(a["truncated"])})
    return rows


def settings(mc: Metrics, bertscore_hash: str | None) -> MetricSettings:
    return {
        "bertscore": {"model": mc.bertscore_model, "num_layers": mc.bertscore_layers or None,
                      "lang": mc.bertscore_lang, "rescale_with_baseline": mc.bertscore_rescale,
                      "hash": bertscore_hash},
        "rouge": {"variant": "rougeL F1 (rouge_score)", "use_stemmer": mc.rouge_stemmer},
        "bootstrap": {"resamples": mc.bootstrap_resamples, "seed": mc.bootstrap_seed,
                      "percentiles": [2.5, 97.5], "method": m.BOOTSTRAP_METHOD},
        "normalisation": m.NORMALISATION,
        "versions": library_versions(m.VERSIONED),
    }  # fmt: skip
