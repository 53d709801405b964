"""Reward functions (kawhi.train.rewards) in TRL's signature, checked against math-verify."""

import pytest
from math_verify import parse, verify

from kawhi.train.rewards import AccuracyReward, FormatReward, build_reward_functions, completion_text


def _chat(text):
    return [{"role": "assistant", "content": text}]


@pytest.mark.parametrize("pred, gold", [("0.5", "1/2"), ("1/2", "0.5"), (r"\boxed{3}", "3"), (r"\frac{3}{4}", "0.75"),
                                        ("12", "12.0")])
def test_accuracy_accepts_equivalent_forms_like_math_verify(pred, gold):
    reward = AccuracyReward()
    text = f"Count them.\n\nThe answer is \\boxed{{{pred}}}." if "boxed" not in pred else f"So {pred}."
    # math-verify itself agrees that these are the same answer
    assert verify(parse(f"\\boxed{{{gold}}}"), parse(pred if "boxed" in pred else f"\\boxed{{{pred}}}"))
    assert reward(prompts=[None], completions=[text], answer=[gold]) == [1.0]
    assert reward(prompts=[None], completions=[_chat(text)], answer=[gold]) == [1.0]


@pytest.mark.parametrize("pred, gold", [("0.6", "1/2"), (r"\boxed{4}", "3"), ("no answer here", "3"), ("", "3")])
def test_accuracy_rejects_wrong_answers(pred, gold):
    reward = AccuracyReward()
    assert reward(prompts=[None], completions=[pred], answer=[gold]) == [0.0]


def test_accuracy_multiple_choice_letter_or_text():
    reward = AccuracyReward()
    options = ["1", "2", "3", "4"]
    completions = [r"\boxed{B}", r"\boxed{2}", "The answer is (B).", r"\boxed{C}", r"\boxed{3}"]
    got = reward(prompts=[None] * 5, completions=completions, answer=["2"] * 5, options=[options] * 5)
    assert got == [1.0, 1.0, 1.0, 0.0, 0.0]
    # an empty options list (from parquet) means free-form
    assert reward(prompts=[None], completions=[r"\boxed{7}"], answer=["7"], options=[[]]) == [1.0]


def test_accuracy_needs_answer_column():
    with pytest.raises(KeyError, match="answer"):
        AccuracyReward()(prompts=[None], completions=["x"])


def test_units_follow_config():
    text = r"\boxed{5 \text{ cm}}"
    assert AccuracyReward(strip_units=True)(prompts=[None], completions=[text], answer=["5"]) == [1.0]


def test_format_reward():
    fmt = FormatReward("\n\n")
    assert fmt(prompts=[None] * 3, completions=["Step.\n\nThe answer is \\boxed{3}.", "\\boxed{3}", "no box"]) == \
        [1.0, 0.5, 0.0]


def test_build_reward_functions_weights():
    training = {"format_reward": 0.0, "max_completion_length": 32, "strip_units": True}
    funcs, weights = build_reward_functions(training, {"overlong_punishment": False})
    assert [f.__name__ for f in funcs] == ["accuracy"] and weights == [1.0]
    funcs, weights = build_reward_functions({**training, "format_reward": 0.2},
                                            {"overlong_punishment": True, "overlong_buffer": 8})
    assert [f.__name__ for f in funcs] == ["accuracy", "format", "soft_overlong_punishment_reward"]
    assert weights == [1.0, 0.2, 1.0]
    overlong = funcs[2]
    assert overlong(completion_ids=[[0] * 20, [0] * 28, [0] * 40]) == [0.0, -0.5, -1.0]
    with pytest.raises(ValueError, match="overlong_buffer"):
        build_reward_functions(training, {"overlong_punishment": True, "overlong_buffer": 64})


def test_completion_text_forms():
    assert completion_text("a") == "a"
    assert completion_text([{"role": "assistant", "content": [{"type": "text", "text": "b"}]}]) == "b"
    with pytest.raises(TypeError):
        completion_text(3)
