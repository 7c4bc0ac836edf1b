"""Scenario 20: a judge that cannot be asked is refused before judge/ is touched (issue 17).

A run directory holds a finished judge stage: 4 verdicts paid for through the loopback
Anthropic API double (tests/judges/conftest.py), their cache, mapping, summary and record, and
the manifest. Then `repro judge --force` (the judge rerun, which clears judge/ but for cache/
once it starts) with what cannot work: no key in the variable judge.api_key_env names
(anthropic, openai) or no variable named, while questions are not in judge/cache (another judge
model); the key itself pasted in place of the variable's name; answers missing at judge.cap; a
replay file that is not there. Each is refused with its exit code, the problem and the fix; the
sha256 of every file of the run directory before and after are equal (the lock file aside); no
key value is printed. With every reply cached, the rerun needs no key at all.
"""

from __future__ import annotations

import pytest

from advisor_repro.cli import main
from advisor_repro.files import read_json, write_jsonl

from .conftest import PROFILE, SECRETS, judge_api_double, judge_sets, tree

KEY = SECRETS["ANTHROPIC_API_KEY"]
N = 4  # prompts: the smoke profile judges judge.sample = 4 of them


@pytest.fixture
def api():
    server = judge_api_double()()
    yield server
    server.close()


def write_inputs(run) -> None:
    """data/eval_prompts.jsonl and generate/answers.jsonl as those stages write them, at the
    shrunk profile's caps (24, 48); the fine-tuned answer of prompt 1 is WRONG (scored 0)."""
    prompts = [{"sample_id": i, "dataset_index": 10 + i, "prompt": f"Question {i}?",
                "reference": f"Reference {i}."} for i in range(N)]
    answers = [{"sample_id": i, "dataset_index": 10 + i, "model": model, "cap": cap,
                "text": f"A WRONG answer {i}." if (model, i) == ("ft", 1) else f"Answer {i}.",
                "new_tokens": cap, "truncated": True, "seconds": 0.1}
               for i in range(N) for model in ("base", "ft") for cap in (24, 48)]
    write_jsonl(run / "data/eval_prompts.jsonl", prompts)
    write_jsonl(run / "generate/answers.jsonl", answers)


def sets(*values: str) -> list[str]:
    return [a for v in values for a in ("--set", v)]


@pytest.fixture
def judged(api, tmp_path, monkeypatch):
    """A run directory with a finished judge stage (anthropic, through the loopback API)."""
    run = tmp_path / "run"
    write_inputs(run)
    monkeypatch.setenv("ANTHROPIC_API_KEY", KEY)
    assert main(["judge", *PROFILE, *sets(*judge_sets(api.url)), "--run-dir", str(run)]) == 0
    assert len(api.requests) == N and len(list((run / "judge/cache").glob("*.json"))) == N
    assert read_json(run / "judge/summary.json")["calls"] == {"paid": N, "cached": 0}
    return run


def anthropic(url: str, *extra: str) -> list[str]:
    return sets(*judge_sets(url), *extra)


def openai(url: str) -> list[str]:
    return anthropic(url, "judge.backend='openai'", f"judge.base_url='{url}/v1'",
                     "judge.api_key_env='OPENAI_API_KEY'")


# Another judge model: none of its replies is in judge/cache, so the key is needed (with the
# same model every reply is cached and the rerun needs no key: the last test).
OTHER = "judge.model='claude-test-2'"
# case -> (--set arguments for the API at url, variables unset, exit code, words of the message)
CASES = {
    "anthropic-key-not-set": (lambda url: anthropic(url, OTHER), ("ANTHROPIC_API_KEY",), 10, [
        "the anthropic judge needs an API key in the environment variable ANTHROPIC_API_KEY, "
        "which is not set; 4 of 4 questions are not in ", "judge/cache; nothing was changed",
        "fix: one of: export ANTHROPIC_API_KEY=..."]),
    "openai-key-not-set": (openai, ("OPENAI_API_KEY",), 10, [
        "the openai judge needs an API key in the environment variable OPENAI_API_KEY, which "
        "is not set; 4 of 4 questions", "fix: one of: export OPENAI_API_KEY=..."]),
    "no-variable-named": (lambda url: anthropic(url, OTHER, "judge.api_key_env=''"), (), 10, [
        "the anthropic judge needs an API key but judge.api_key_env is empty; 4 of 4",
        "fix: --set judge.api_key_env=ANTHROPIC_API_KEY"]),
    "the-key-as-the-name": (lambda url: anthropic(url, f"judge.api_key_env='{KEY}'"), (), 2, [
        "judge.api_key_env must be the NAME of an environment variable",
        "not the key itself (the value given is not shown)", "fix: correct the value"]),
    "no-answers-at-the-cap": (lambda url: anthropic(url, "generate.caps=[24, 96]",
                                                    "judge.cap=96"), (), 3, [
        "generate/answers.jsonl has no answer at cap 96 (judge.cap) for 0/base, 0/ft, 1/base, "
        "1/ft, 2/base, 2/ft ...; it holds caps [24, 48]",
        "fix: rerun repro generate --run-dir"]),
    "replay-file-missing": (lambda url: sets("judge.backend='replay'",
                                             "judge.replay_file='/nonexistent/scores.csv'"), (),
                            2, ["judge.backend = 'replay' needs judge.replay_file, a file that "
                                "exists (got '/nonexistent/scores.csv')",
                                "fix: --set judge.replay_file="]),
}


@pytest.mark.parametrize("case", CASES)
def test_a_judge_that_cannot_be_asked_is_refused_and_changes_nothing(case, judged, api,
                                                                    monkeypatch, capsys):
    run = judged
    args, unset, code, words = CASES[case]
    for name in unset:
        monkeypatch.delenv(name, raising=False)
    capsys.readouterr()
    before = tree(run)
    assert main(["judge", *PROFILE, *args(api.url), "--force", "--run-dir", str(run)]) == code
    out = capsys.readouterr()
    for w in words:
        assert w in out.err, out.err
    assert tree(run) == before  # verdicts, mapping, summary, record, cache and manifest
    assert not (run / "judge/started.json").exists() and not (run / "judge/failed.json").exists()
    assert len(api.requests) == N  # nothing was asked
    for secret in SECRETS.values():
        assert secret not in out.out + out.err



def test_replies_already_paid_for_are_rescored_without_the_key(judged, api, monkeypatch,
                                                               capsys):
    """The key is refused only when a question must be asked: with every reply in judge/cache
    the forced rerun needs none, and pays for nothing."""
    monkeypatch.delenv("ANTHROPIC_API_KEY")
    assert main(["judge", *PROFILE, *anthropic(api.url), "--force", "--run-dir",
                 str(judged)]) == 0
    assert len(api.requests) == N
    assert read_json(judged / "judge/summary.json")["calls"] == {"paid": 0, "cached": N}
    assert KEY not in capsys.readouterr().err
