"""bench_generate.py on the CPU at the tiny scale (2 small layers of the Mistral shape): the
same code path the GPU run takes, answers forced to full length, the record and its table."""

import pytest

from advisor_repro.bench import generate as bench_generate
from advisor_repro.config import load_config
from advisor_repro.errors import PreflightError

pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py


def test_random_prompts_have_eval_prompt_lengths_and_no_special_ids():
    prompts = bench_generate.random_prompts(50, 32768)
    assert prompts == bench_generate.random_prompts(50, 32768)
    assert all(24 <= len(p) <= 64 for p in prompts) and len({len(p) for p in prompts}) > 5
    assert min(min(p) for p in prompts) >= 3 and max(max(p) for p in prompts) < 32768


def test_tiny_bench_forces_full_length_answers_and_records_each_phase():
    saved = []
    opts = bench_generate.GenerateOptions(answers=5, new_tokens=6, sequential=2,
                                          variants=["dynamic", "static"], scale="tiny")
    rec = bench_generate.run(load_config("paper"), opts, say=lambda m: None,
                             save=lambda r: saved.append({**r, "batched": dict(r["batched"])}))
    seq = rec["sequential"]
    assert seq["prompts"] == 2 and seq["tokens"] == 12 and len(seq["per_answer_s"]) == 2
    assert seq["extrapolated_seconds_all"] == round(5 * 6 / seq["tokens_per_s"], 1)
    for variant in ("dynamic", "static"):
        b = rec["batched"][variant]
        assert b["all_full_length"] and b["tokens"] == 30 and b["batch_size"] == 5
        assert b["speedup"] == round(b["tokens_per_s"] / seq["tokens_per_s"], 2)
    assert [list(s["batched"]) for s in saved] == [[], ["dynamic"], ["dynamic", "static"]]
    assert rec["load"]["quant"] is False and rec["vram"] == {}
    table = bench_generate.markdown(rec)
    assert "| batched, static KV cache (generate stage) | 5 |" in table
    assert rec["batched"]["static"]["steady_step_ms"] is None  # 6 tokens: no steady steps


def test_the_table_gives_the_steady_milliseconds_per_decoding_step():
    rec = {"environment": {"gpu": "NVIDIA H100 80GB HBM3", "torch": "2.9"},
           "sequential": {"prompts": 3, "tokens_per_s": 30.5, "extrapolated_seconds_all": 840.0},
           "load": {"quant": True, "compute_dtype": "float16"}, "vram": {"cap_gib": 14.74},
           "scale": "full", "answers": 50, "new_tokens": 512,
           "batched": {"static": {"batch_size": 50, "tokens_per_s": 400.0, "speedup": 13.1,
                                  "steady_tokens_per_s": 434.8, "steady_step_ms": 115.0,
                                  "peak_reserved_gib": 11.9, "seconds": 64.0}}}
    table = bench_generate.markdown(rec)
    assert "| batched, static KV cache (generate stage) | 50 | 400.0 | 13.1x | 434.8 | 115.0 | " \
           "11.9 | 64.0 |" in table


def test_the_7b_shape_needs_a_gpu():
    import torch

    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    with pytest.raises(PreflightError, match="needs a CUDA GPU"):
        bench_generate.run(load_config("paper"),
                           bench_generate.GenerateOptions(100, 512, 3, ["dynamic"], "full"))
