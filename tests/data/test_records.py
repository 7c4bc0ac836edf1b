"""The data wing's records: validation errors, the training text format, the prompt draw."""

import pytest

from advisor_repro import data
from advisor_repro.config import load_config
from advisor_repro.errors import DataError


def conv(*turns):
    roles = ["human", "assistant"]
    return {"conversations": [{"from": roles[i % 2], "value": t} for i, t in enumerate(turns)]}


def test_training_text_is_the_notebook_format():
    d = load_config("paper").data
    text = data.render_training_text(conv("Hi?", "Hello.", "More?", "Yes."), d)
    assert text == "Human: Hi?\n\nAssistant: Hello.</s>\n\nHuman: More?\n\nAssistant: Yes.</s>"


def test_two_human_turns_in_a_row_is_refused_with_split_and_index():
    bad = {"conversations": [{"from": "human", "value": "a"}, {"from": "human", "value": "b"}]}
    with pytest.raises(DataError) as err:
        data.validate("train", [conv("q", "a"), bad])
    assert err.value.problem.startswith("train[1]: turn 1 is from 'human'")


def test_empty_answer_is_refused():
    with pytest.raises(DataError, match=r"test\[0\]: turn 1 \(assistant\) has empty text"):
        data.validate("test", [conv("q", "   ")])


def test_record_without_conversations_is_refused():
    with pytest.raises(DataError, match="no 'conversations'"):
        data.validate("train", [{"messages": []}])


def test_prompt_draw_matches_the_paper_indices():
    test = [conv(f"q{i}", f"a{i}") for i in range(402)]
    prompts = data.draw_eval_prompts(test, 50, 42)
    assert [p["dataset_index"] for p in prompts[:8]] == [151, 127, 77, 43, 261, 68, 371, 280]
    assert len({p["dataset_index"] for p in prompts}) == 50
    assert prompts[0] == {
        "sample_id": 0,
        "dataset_index": 151,
        "prompt": "q151",
        "reference": "a151",
    }


def test_drawing_more_prompts_than_the_split_holds_is_refused():
    with pytest.raises(DataError, match="eval_prompts=2"):
        data.draw_eval_prompts([conv("q", "a"), conv("q", "a")], 3, 42)
