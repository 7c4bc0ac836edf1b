"""Judge statistics: the slot rule, de-blinding, Table 4 exactly, the preference tests, the
swap-pass statistics and the counting rule for unparseable verdicts."""

import csv
import io
import random
import statistics

import pytest

from advisor_repro.judges import stats as judge_stats
from advisor_repro.judges.contingency import chi2_sf
from advisor_repro.judges.records import JudgeSummary

# De-blinded judge values of the 50 prompts, in prompt order: base domain, ft domain, base
# helpfulness, ft helpfulness, preferred model (b = base, f = fine-tuned, t = tie). They are the
# released judge scores (docs/eval/v4-llm-judge-scores.csv of the author's repository) with the
# slot rule undone; the test blinds them again to build a file in the released format.
DEBLINDED = [
    "3232b", "3030b", "2222t", "2222f", "2121b", "3232b", "1122t", "3333t", "2222t", "2222t",
    "3031b", "3232b", "2222f", "2222t", "3332b", "2223f", "2323f", "2222f", "2122b", "3222b",
    "2222t", "1121b", "1111t", "2222b", "2212f", "2222f", "2222t", "2222f", "2121b", "2222t",
    "2222b", "2222b", "2222t", "2020b", "2222t", "3232b", "2021b", "2222t", "2121b", "2222t",
    "2222t", "2222b", "2121b", "2222t", "3232b", "2222t", "2222b", "2222t", "1212f", "3232b",
]
# random.Random(42).random() < 0.5, drawn once per prompt in order: A = base in slot A
PAPER_SLOTS = "BAAABBBAAAABAABBABBABBAABAAABBBBBBABBBBBBAAAAAAABA"


def released_csv(values=DEBLINDED, slots=PAPER_SLOTS) -> str:
    """A judge-scores file in the released format (sample_id 1..50) from de-blinded values."""
    out = io.StringIO()
    w = csv.writer(out)
    w.writerow(["sample_id", "domain_a", "help_a", "domain_b", "help_b", "preferred_slot",
                "note_a", "note_b"])
    for sid, (v, slot) in enumerate(zip(values, slots, strict=True), start=1):
        bd, fd, bh, fh, pref = int(v[0]), int(v[1]), int(v[2]), int(v[3]), v[4]
        (da, ha), (db, hb) = ((bd, bh), (fd, fh)) if slot == "A" else ((fd, fh), (bd, bh))
        base_letter, ft_letter = ("a", "b") if slot == "A" else ("b", "a")
        p = {"b": base_letter, "f": ft_letter, "t": "tie"}[pref]
        w.writerow([sid, da, ha, db, hb, p, "note, with a comma", "another note"])
    return out.getvalue()


def independent_ci(deltas, resamples=1000, seed=42):
    rng = random.Random(seed)
    n = len(deltas)
    means = []
    for _ in range(resamples):
        total = 0
        for _ in range(n):
            total += deltas[rng.randrange(n)]
        means.append(total / n)
    means.sort()
    return means[25], means[975]


def test_mapping_reproduces_the_papers_rule():
    mapping = judge_stats.slot_mapping(list(range(1, 51)), 42)
    assert "".join(mapping.values()) == PAPER_SLOTS
    assert list(mapping) == [str(i) for i in range(1, 51)]
    # the four fine-tuned errors of the released notes sit in the slot the rule gives the ft
    # model: samples 2 and 11 in slot b (base in A), samples 34 and 37 in slot a (base in B)
    assert [mapping[s] for s in ("2", "11", "34", "37")] == ["A", "A", "B", "B"]
    doc = judge_stats.mapping_document(list(range(1, 51)), 42)
    assert judge_stats.base_slots(doc) == mapping
    assert judge_stats.base_slots({"7": {"base_slot": "b"}}) == {"7": "B"}
    assert judge_stats.base_slots([{"sample_id": 3, "base_slot": "A"}]) == {"3": "A"}


def test_table4_exactly_from_the_released_format_and_the_rule():
    rows = list(csv.DictReader(io.StringIO(released_csv())))
    mapping = judge_stats.slot_mapping([r["sample_id"] for r in rows], 42)
    s = judge_stats.summarize(rows, mapping).passes["primary"]
    dom, hlp = s["scores"]["domain"], s["scores"]["help"]
    # PAPER.md, the judge table: 2.14 +- 0.53 | 1.74 +- 0.69 | -0.40 [-0.62, -0.18]
    assert [round(x, 2) for x in (dom["base"]["mean"], dom["base"]["sd"], dom["ft"]["mean"],
                                  dom["ft"]["sd"], dom["delta"], *dom["ci95"])] == \
        [2.14, 0.53, 1.74, 0.69, -0.40, -0.62, -0.18]
    # 2.14 +- 0.49 | 1.82 +- 0.59 | -0.32 [-0.52, -0.12]
    assert [round(x, 2) for x in (hlp["base"]["mean"], hlp["base"]["sd"], hlp["ft"]["mean"],
                                  hlp["ft"]["sd"], hlp["delta"], *hlp["ci95"])] == \
        [2.14, 0.49, 1.82, 0.59, -0.32, -0.52, -0.12]
    assert s["preference"]["counts"] == {"base": 23, "ft": 9, "tie": 18, "not_ok": 0}
    assert s["preference"]["shares"]["base"] == 0.46 and s["preference"]["shares"]["ft"] == 0.18
    assert (s["divergent"]["n"], s["divergent"]["favour_base"], s["divergent"]["favour_ft"]) == \
        (18, 16, 2)
    sm = s["tests"]["help_winner_x_preference"]["stuart_maxwell_shifted"]
    assert round(sm["statistic"], 1) == 9.3 and sm["df"] == 2 and round(sm["p"], 4) == 0.0095


def test_statistics_match_an_independent_computation():
    rows = list(csv.DictReader(io.StringIO(released_csv())))
    s = judge_stats.summarize(rows, judge_stats.slot_mapping(list(range(1, 51)), 42)).passes[
        "primary"]
    for metric, (b_at, f_at) in (("domain", (0, 1)), ("help", (2, 3))):
        base = [int(v[b_at]) for v in DEBLINDED]
        ft = [int(v[f_at]) for v in DEBLINDED]
        got = s["scores"][metric]
        assert got["base"]["mean"] == pytest.approx(statistics.mean(base))
        assert got["base"]["sd"] == pytest.approx(statistics.pstdev(base))
        assert got["ft"]["sd"] == pytest.approx(statistics.pstdev(ft))
        deltas = [f - b for b, f in zip(base, ft, strict=True)]
        assert got["delta"] == pytest.approx(statistics.mean(deltas))
        assert got["ci95"] == pytest.approx(list(independent_ci(deltas)))
    prefs = [v[4] for v in DEBLINDED]
    assert s["tests"]["sign_test"]["base_preferred"] == prefs.count("b")
    # Stuart-Maxwell of a table with one free pair (ft row empty off-diagonal) reduces to a
    # sum of McNemar terms: (0.5 - 7)^2 / 7.5 + ... computed here by the 2 x 2 solve by hand
    t = [[16, 0.5, 0.5], [0.5, 4, 0.5], [7, 5, 18]]
    d = [sum(t[0]) - sum(r[0] for r in t), sum(t[1]) - sum(r[1] for r in t)]
    v11 = sum(t[0]) + sum(r[0] for r in t) - 2 * t[0][0]
    v22 = sum(t[1]) + sum(r[1] for r in t) - 2 * t[1][1]
    v12 = -(t[0][1] + t[1][0])
    det = v11 * v22 - v12 * v12
    stat = (d[0] * (v22 * d[0] - v12 * d[1]) + d[1] * (v11 * d[1] - v12 * d[0])) / det
    sm = s["tests"]["help_winner_x_preference"]["stuart_maxwell_shifted"]
    assert sm["statistic"] == pytest.approx(stat) and sm["p"] == pytest.approx(chi2_sf(stat, 2))


def _row(sid, pass_name, base_slot, da, db, pref, status="ok"):
    return {"sample_id": sid, "pass": pass_name, "base_slot": base_slot, "status": status,
            "domain_a": da, "help_a": da, "domain_b": db, "help_b": db, "preferred_slot": pref}


def test_swap_pass_consistency_and_position_bias():
    mapping = {"1": "A", "2": "A", "3": "B", "4": "B"}
    rows = [
        # sample 1: base preferred in both passes (consistent)
        _row(1, "primary", "A", 3, 2, "a"), _row(1, "swap", "B", 2, 3, "b"),
        # sample 2: the judge always picks slot a: flips from base to ft
        _row(2, "primary", "A", 2, 2, "a"), _row(2, "swap", "B", 2, 2, "a"),
        # sample 3: tie both times (consistent)
        _row(3, "primary", "B", 2, 2, "tie"), _row(3, "swap", "A", 2, 2, "tie"),
        # sample 4: slot a, then tie: inconsistent
        _row(4, "primary", "B", 2, 2, "a"), _row(4, "swap", "A", 2, 2, "tie"),
    ]
    s = judge_stats.summarize(rows, mapping).to_json()
    c = s["swap_consistency"]
    assert (c["n_both"], c["consistent"], c["consistency_rate"]) == (4, 2, 0.5)
    assert c["inconsistent_sample_ids"] == ["2", "4"]
    assert (c["flipped_verdicts_slot_a"], c["flipped_verdicts_slot_b"]) == (3, 0)
    assert c["position_bias_rate"] == 1.0
    assert c["combined_preference"]["counts"] == {"base": 1, "ft": 0, "tie": 3, "not_ok": 0}
    assert s["primary"]["preference"]["counts"] == {"base": 2, "ft": 1, "tie": 1, "not_ok": 0}
    assert s["swap"]["preference"]["counts"] == {"base": 1, "ft": 1, "tie": 2, "not_ok": 0}


def test_unparseable_verdicts_are_counted_apart():
    mapping = {"1": "A", "2": "B", "3": "A"}
    rows = [_row(1, "primary", "A", 3, 1, "a"), _row(2, "primary", "B", 1, 3, "b"),
            {"sample_id": 3, "pass": "primary", "status": "unparseable", "raw": "###"}]
    s = judge_stats.summarize(rows, mapping).to_json()
    p = s["primary"]
    assert (p["n_judged"], p["n_scored"]) == (3, 2)
    assert p["preference"]["counts"] == {"base": 2, "ft": 0, "tie": 0, "not_ok": 1}
    assert p["preference"]["shares"]["base"] == pytest.approx(2 / 3)
    assert p["scores"]["domain"]["base"]["mean"] == 3.0
    assert s["status_counts"] == {"primary": {"ok": 2, "unparseable": 1}}


def test_nothing_parsed_gives_empty_tables_not_a_crash():
    rows = [{"sample_id": 1, "pass": "primary", "status": "unparseable", "raw": ""}]
    p = judge_stats.summarize(rows, {"1": "A"}).passes["primary"]
    assert p["scores"] == {"domain": None, "help": None} and p["tests"] is None


def test_judge_stage_replays_the_released_file_into_table4(tmp_path):
    """The whole path: a judge-scores CSV in the released format -> the replay backend -> the
    judge stage -> summary.json, over eval prompts with the release's sample ids 1..50."""
    from advisor_repro import pipeline
    from advisor_repro.config import load_config
    from advisor_repro.files import read_json, read_jsonl, write_jsonl

    csv_path = tmp_path / "judge_scores.csv"
    csv_path.write_text(released_csv(), encoding="utf-8")
    run = tmp_path / "run"
    write_jsonl(run / "data/eval_prompts.jsonl",
                [{"sample_id": i, "dataset_index": i, "prompt": f"Q{i}?", "reference": "R"}
                 for i in range(1, 51)])
    write_jsonl(run / "generate/answers.jsonl",
                [{"sample_id": i, "model": m, "cap": 256, "text": f"{m} {i}", "new_tokens": 9,
                  "truncated": False, "seconds": 0.1}
                 for i in range(1, 51) for m in ("base", "ft")])
    cfg = load_config("paper", ["judge.backend='replay'", f"judge.replay_file='{csv_path}'"])
    pipeline.run_stage(pipeline.get_stage("judge"), cfg, run, log=lambda m: None)
    written = read_json(run / "judge/summary.json")
    assert JudgeSummary.from_json(written).to_json() == written  # reads its own
    s = written["primary"]
    assert round(s["scores"]["domain"]["delta"], 2) == -0.40
    assert [round(x, 2) for x in s["scores"]["help"]["ci95"]] == [-0.52, -0.12]
    assert s["preference"]["counts"] == {"base": 23, "ft": 9, "tie": 18, "not_ok": 0}
    verdicts = read_jsonl(run / "judge/verdicts.jsonl")
    assert "".join(v["base_slot"] for v in verdicts) == PAPER_SLOTS
    assert verdicts[0]["judge"]["backend"] == "replay"
    assert verdicts[0]["judge"]["file"] == "judge_scores.csv"
