"""The local judge under the rubric's grammar: a tiny random Qwen2 of the stand-in recipe on the
CPU (validity that does not depend on the model), the smoke model batched against one question
at a time, the refusal of a tokenizer that cannot serve the schema, and the GPU check (gpu)."""

import json
import os
import shutil

import pytest

from advisor_repro.bench.judge import TINY
from advisor_repro.bench.judge_fit import build_standin, pairs
from advisor_repro.config import load_config
from advisor_repro.errors import ConfigError
from advisor_repro.judges import CachedJudge, Question, ask, ask_all
from advisor_repro.judges.local import LocalJudge, LocalRun
from advisor_repro.judges.rubric import claim_messages, pair_messages, parse_claim, parse_pair

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def standin(tmp_path_factory):
    return build_standin(tmp_path_factory.mktemp("standin") / "m", shape=TINY, device="cpu",
                         conversations=40)


def tiny_judge(folder, *settings, decoding="grammar"):
    jc = load_config("paper", ["judge.backend='local'", *settings]).judge
    return LocalJudge(folder, "tiny-qwen2", "standin", jc, "cpu", "auto",
                      LocalRun(decoding=decoding))


def test_a_random_weight_judge_gives_20_valid_verdicts_of_20(standin, tmp_path):
    assert json.loads((standin / "standin.json").read_text())["shape"] == TINY
    backend = tiny_judge(standin, "judge.max_tokens=200")
    assert backend.identity["quant"] == "none" and backend.identity["dtype"] == "float32"
    assert backend.identity["decoding"].startswith("grammar:llguidance-1.9.1")
    base = [(q, a, b) for q, r, w in pairs() for a, b in ((r, w), (w, r))]
    qs = [Question(pair_messages(f"{base[i % 6][0]} ({i})", *base[i % 6][1:]), parse_pair,
                   f"pair:{i}:primary") for i in range(20)]
    judge = CachedJudge(backend, tmp_path / "cache")
    replies = ask_all(judge, qs, parse_retries=0)
    assert [r.status for r in replies] == ["ok"] * 20
    assert all(r.attempts == 1 and 0 <= r.parsed["domain_a"] <= 3 for r in replies)
    assert {r.parsed["preferred_slot"] for r in replies} <= {"a", "b", "tie"}
    assert len(os.listdir(tmp_path / "cache")) == 20 and judge.calls == 20
    assert backend.batch_sizes == [8, 8, 4]  # CPU default batch of 8
    # a rerun asks nothing: every reply comes from the cache
    again = CachedJudge(backend, tmp_path / "cache")
    assert [r.parsed for r in ask_all(again, qs, 0)] == [r.parsed for r in replies]
    assert again.calls == 0 and again.hits == 20
    backend.close()


def test_a_killed_batch_keeps_the_replies_of_the_batches_before_it(standin, tmp_path):
    backend = tiny_judge(standin, "judge.max_tokens=200", "judge.batch_size=2")
    qs = [Question(claim_messages(f"Q{i}?", f"Answer {i}.", "a claim", "a fact", ""),
                   parse_claim, f"claim:{i}") for i in range(5)]
    real, seen = backend._generate, []

    def dies_on_the_third_batch(prompts, tasks, force_tokens=0):
        seen.append(len(prompts))
        if len(seen) == 3:
            raise KeyboardInterrupt  # a kill in the middle of the stage
        return real(prompts, tasks, force_tokens)

    backend._generate = dies_on_the_third_batch
    with pytest.raises(KeyboardInterrupt):
        ask_all(CachedJudge(backend, tmp_path / "cache"), qs, 0)
    assert len(os.listdir(tmp_path / "cache")) == 4  # two batches of two were written
    backend._generate = real
    rerun = CachedJudge(backend, tmp_path / "cache")
    assert [r.status for r in ask_all(rerun, qs, 0)] == ["ok"] * 5
    assert rerun.hits == 4 and rerun.calls == 1  # only what was missing is asked
    backend.close()


def test_a_tokenizer_without_chat_template_is_refused_before_loading(standin, tmp_path):
    broken = tmp_path / "no-template"
    shutil.copytree(standin, broken)
    (broken / "chat_template.jinja").unlink()
    cfg = json.loads((broken / "tokenizer_config.json").read_text())
    cfg.pop("chat_template", None)
    (broken / "tokenizer_config.json").write_text(json.dumps(cfg))
    (broken / "model.safetensors").write_bytes(b"not weights")  # never read: refused first
    with pytest.raises(ConfigError) as err:
        tiny_judge(broken)
    assert "tiny-qwen2" in str(err.value) and "no chat template" in str(err.value)
    assert "judge.local_model" in err.value.fix


def test_a_reply_budget_too_small_for_the_schema_is_refused(standin):
    with pytest.raises(ConfigError, match=r"judge.max_tokens = 150 cannot hold the pair"):
        tiny_judge(standin, "judge.max_tokens=150")


def test_batched_greedy_verdicts_equal_one_at_a_time_with_the_smoke_model(tmp_path):
    from advisor_repro.models.hub import base_model

    cfg = load_config("smoke", ["judge.max_tokens=200"])
    folder, revision = base_model(cfg.model, "eval")
    backend = LocalJudge(folder, "smoke", revision, cfg.judge, "cpu", "auto")
    msgs = [claim_messages("When is the deadline?", "The deadline is 1 March." * k,
                           "The deadline is 1 May.", "It is 1 March.", "handbook")
            for k in (1, 3, 6)]  # different lengths: the batch is left-padded
    one = [backend.complete(m, "k", "claim") for m in msgs]
    got: dict[int, str] = {}
    backend.complete_batch([(m, "k", "claim") for m in msgs], got.__setitem__)
    assert [got[i] for i in range(3)] == one
    assert backend.batch_sizes == [1, 1, 1, 3]
    assert all(parse_claim(t) for t in one)
    backend.close()


def test_the_paper_free_text_path_still_retries_an_unusable_reply(standin, tmp_path):
    # the benchmark's baseline: no grammar, random weights
    backend = tiny_judge(standin, "judge.max_tokens=24", decoding="free")
    assert backend.identity["decoding"] == "free"
    q, right, wrong = pairs()[0]
    reply = ask(CachedJudge(backend, tmp_path / "cache"), pair_messages(q, right, wrong),
                parse_pair, "k", parse_retries=1)
    assert reply.status == "unparseable" and reply.attempts == 2
    backend.close()


@pytest.mark.gpu
def test_local_judge_fits_the_16gb_budget_on_the_gpu(tmp_path):
    import torch

    if not torch.cuda.is_available():
        pytest.skip("needs a CUDA GPU")
    from advisor_repro.bench.judge_fit import main

    out = tmp_path / "check.json"
    assert main(["--out", str(out)]) == 0
    report = json.loads(out.read_text())
    assert report["fits"] and report["peak_reserved_gib"] <= report["budget_gib"]
    assert len(report["calls"]) == 3 and all(c["status"] == "ok" for c in report["calls"])


def test_an_out_of_memory_batch_is_halved_and_asked_again(standin, tmp_path):
    import torch

    backend = tiny_judge(standin, "judge.max_tokens=200", "judge.batch_size=4")
    real, seen = backend._generate, []

    def fits_two(prompts, tasks, force_tokens=0):
        seen.append(len(prompts))
        if len(prompts) > 2:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory (simulated)")
        return real(prompts, tasks, force_tokens)

    backend._generate = fits_two
    qs = [Question(claim_messages(f"Q{i}?", f"Answer {i}.", "a claim", "a fact", ""),
                   parse_claim, f"claim:{i}") for i in range(5)]
    replies = ask_all(CachedJudge(backend, tmp_path / "cache"), qs, 0)
    assert [r.status for r in replies] == ["ok"] * 5
    assert seen == [4, 2, 2, 1] and backend.batch_sizes == [2, 2, 1]
    backend.close()


def test_masks_computed_during_the_forward_give_the_same_replies(standin, monkeypatch):
    """GrammarProcessor(overlap=True): the next step's masks come from the processor's own
    argmax, fed by a worker thread (on the CPU without a CUDA event); the replies and every
    token fed to the matchers equal the step-by-step path's, rows of different lengths and
    tasks in one batch, each row stopping at its own step."""
    from advisor_repro.judges import grammar

    backend = tiny_judge(standin, "judge.max_tokens=200")
    q, right, wrong = pairs()[0]
    msgs = [pair_messages(q, right, wrong), pair_messages(q + " (2)", wrong, right),
            claim_messages("When?", "On 1 March." * 4, "1 May", "1 March", "handbook")]
    prompts = [backend.encode(m) for m in msgs]
    tasks = ["pair", "pair", "claim"]
    made: list = []
    real = grammar.GrammarProcessor

    def recording(*args, **kw):
        made.append(real(*args, **kw))
        return made[-1]

    monkeypatch.setattr(grammar, "GrammarProcessor", recording)
    runs = {}
    for overlap in (False, True):
        backend.overlap_masks = overlap
        texts = backend._generate(prompts, tasks)
        runs[overlap] = (texts, made[-1].fed, list(backend.last_new_tokens))
        assert made[-1].overlap is overlap and made[-1].pending is None
    assert runs[True][0] == runs[False][0]
    assert all(parse_pair(t) for t in runs[True][0][:2]) and parse_claim(runs[True][0][2])
    assert len(set(runs[True][2])) > 1  # the rows stopped at different steps
    for with_overlap, step_by_step in zip(runs[True][1], runs[False][1], strict=True):
        # the overlapped path also fed the last step's token: the step-by-step one never asks
        assert with_overlap[: len(step_by_step)] == step_by_step
        assert len(with_overlap) - len(step_by_step) in (0, 1)
    backend.close()


def test_a_token_generate_did_not_emit_is_an_error_not_a_changed_reply(standin):
    import torch

    from advisor_repro.judges.grammar import GrammarProcessor

    backend = tiny_judge(standin, "judge.max_tokens=200")
    proc = GrammarProcessor(backend.lltok, [backend.grammars["claim"]] * 2, 4)
    proc.fed = [[5, 6, 7], [8]]
    proc.check(torch.tensor([[5, 6, 7, 2], [8, 2, 0, 0]]))  # prefixes: fine
    with pytest.raises(RuntimeError, match=r"row 0 was fed a token that generate did not "
                                           r"emit \(step 1\)"):
        proc.check(torch.tensor([[5, 9, 7, 2], [8, 2, 0, 0]]))
    backend.close()
