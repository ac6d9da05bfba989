"""Layouts, templates and answers, record by record (no Spark): exact canonical output for each layout."""

from __future__ import annotations

import pytest

from instruct.instruct_fixtures import records
from tokenmill.instruct.layouts import (
    LAYOUTS,
    Bad,
    MapOptions,
    after_hashes,
    boxed,
    detect,
    extract_answer,
    hh_turns,
    oasst1_threads,
    project,
)
from tokenmill.instruct.templates import TEMPLATES, TemplateError, parse, render


def mapped(layout: str, record: dict, use: str, **opts) -> dict:
    return project(LAYOUTS[layout].fn(record, MapOptions(layout=layout, **opts)), use)


def u(text):
    return {"role": "user", "content": text}


def a(text):
    return {"role": "assistant", "content": text}


def test_hh_rlhf_transcript_splits_off_the_shared_prompt():
    row = mapped("hh_rlhf", records("hh_rlhf")[0], "dpo")
    assert row == {
        "prompt": [u("What are some cuss words in english?"), a("I'd rather not list those."), u("Why not?")],
        "chosen": [a("They can hurt people, and I want to be helpful and kind.")],
        "rejected": [a("Fine, here is a list.")],
    }
    # Conversations that do not share their prompt are noted (validation reports them), not silently merged.
    conv = LAYOUTS["hh_rlhf"].fn(records("hh_rlhf")[2], MapOptions(layout="hh_rlhf"))
    assert conv.notes == {"prompt_not_shared": "true"} and conv.prompt == []


def test_hh_turns_rejects_text_that_is_not_a_transcript():
    with pytest.raises(Bad) as err:
        hh_turns("Just a sentence.", "chosen")
    assert err.value.reason == "bad_transcript"


def test_gsm8k_and_math_answers():
    assert mapped("gsm8k", records("gsm8k")[0], "grpo")["answer"] == "72"
    assert mapped("gsm8k", records("gsm8k")[1], "grpo")["answer"] == "1450"  # "#### 1,450"
    row = mapped("math", records("math")[0], "grpo")
    assert row["answer"] == r"\frac{1}{2}" and row["question"] == r"What is $\frac{1}{4} + \frac{1}{4}$?"
    assert boxed(r"so $x = \boxed{\frac{a}{b^{2}}}$ and $\boxed{3}$") == "3"
    assert boxed(r"$\boxed{\frac{a}{b^{2}}}$") == r"\frac{a}{b^{2}}"
    assert after_hashes("work\n#### -12") == "-12"
    assert extract_answer("Adding them up, the answer is 42.", "auto") == "42"
    assert extract_answer("no final answer here", "auto") is None


def test_sharegpt_roles_and_bad_turns():
    row = mapped("sharegpt", records("sharegpt")[1], "sft")
    assert [m["role"] for m in row["messages"]] == ["system", "user", "assistant", "user", "assistant"]
    assert mapped("sharegpt", records("sharegpt")[5], "sft")["messages"][0]["role"] == "narrator"  # kept, reported
    for index, reason in ((6, "bad_message"), (7, "missing_role")):
        with pytest.raises(Bad) as err:
            mapped("sharegpt", records("sharegpt")[index], "sft")
        assert err.value.reason == reason


def test_alpaca_input_joins_the_instruction():
    row = mapped("alpaca", records("alpaca")[1], "sft")
    assert row["messages"] == [u("Classify the sentiment of the sentence.\n\nI loved this film!"), a("Positive")]
    assert mapped("alpaca", records("alpaca")[0], "sft")["messages"][0] == u("Give three tips for staying healthy.")


def test_typed_content_parts_are_converted_and_other_types_refused():
    rows = records("messages")
    assert mapped("messages", rows[5], "sft")["messages"][0] == u("Describe the colour blue.")
    with pytest.raises(Bad) as err:
        mapped("messages", rows[6], "sft")
    assert err.value.reason == "non_string_content"
    with pytest.raises(Bad) as err:
        mapped("messages", {"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": "x"}]}]}, "sft")
    assert err.value.reason == "non_text_content"


def test_orca_dpo_pairs_with_a_system_prompt_and_renamed_prompt():
    row = mapped("dpo", records("orca_dpo")[0], "dpo", fields={"prompt": "question"})
    assert row == {"prompt": [{"role": "system", "content": "You are an AI assistant."},
                              u("What is the boiling point of water at sea level?")],
                   "chosen": [a("Water boils at 100 degrees Celsius at sea level.")],
                   "rejected": [a("Water boils at 50 degrees.")]}


def test_ultrafeedback_best_against_worst_and_ties_refused():
    rows = records("ultrafeedback")
    row = mapped("ultrafeedback", rows[0], "dpo")
    assert row["chosen"][0]["content"].startswith("Leaves drift") and row["rejected"] == [a("Autumn is a season.")]
    with pytest.raises(Bad) as err:
        mapped("ultrafeedback", rows[1], "dpo")
    assert err.value.reason == "no_margin"
    with pytest.raises(Bad):  # 8.5 - 3.0 is not more than a margin of 6
        mapped("ultrafeedback", rows[0], "dpo", margin=6.0)


def test_preference_data_as_sft_trains_on_the_chosen_answer():
    assert mapped("hh_rlhf", records("hh_rlhf")[1], "sft")["messages"] == [
        u("How do I bake bread?"), a("Mix flour, water, yeast and salt, knead, let it rise, then bake at 230C.")]


def test_oasst1_tree_of_seven_messages():
    rows = [{**r, "tree": r["message_tree_id"]} for r in records("oasst1")]
    best = oasst1_threads(rows, "best")
    assert [(leaf, [m["content"][:12] for m in msgs]) for leaf, msgs, _ in best] == [
        ("m5", ["Can you expl", "In functiona", "Can you give", "Maybe is a m"])]  # rank 0 at each turn
    assert [m["role"] for m in best[0][1]] == ["user", "assistant", "user", "assistant"]
    assert best[0][2] == {"tree_id": "t1", "lang": "en"}
    every = oasst1_threads(rows, "all")  # one thread per leaf; the deleted m7 is left out, so m2 is a leaf
    assert [leaf for leaf, _, _ in every] == ["m5", "m6", "m2"]  # best-ranked branches first
    assert [m["content"] for m in every[2][1]] == ["Can you explain what a monad is?",
                                                   "A monad is a design pattern for chaining computations."]


@pytest.mark.parametrize("template", TEMPLATES)
def test_templates_round_trip(template):
    conversations = [
        [u("Hi"), a("Hello!")],
        [{"role": "system", "content": "Be brief."}, u("Capital of France?"), a("Paris."), u("And Italy?"),
         a("Rome.")],
        [u("Line one\nline two"), a("A reply\n\nwith paragraphs.")],
    ]
    for messages in conversations:
        text = render(messages, template)
        assert parse(text, template) == messages
        assert parse(text) == messages  # detected from its markers


def test_named_templates_exact_text():
    msgs = [{"role": "system", "content": "S"}, u("Q"), a("A")]
    assert render(msgs, "chatml") == "<|im_start|>system\nS<|im_end|>\n<|im_start|>user\nQ<|im_end|>\n<|im_start|>assistant\nA<|im_end|>\n"
    assert render(msgs, "llama2") == "<s>[INST] <<SYS>>\nS\n<</SYS>>\n\nQ [/INST] A </s>"
    assert render(msgs, "alpaca") == "S\n\n### Instruction:\nQ\n\n### Response:\nA"
    with pytest.raises(TemplateError):
        render([u("a"), u("b")], "llama2")


def test_alpaca_text_column_parses_back_to_the_pair():
    rec = records("alpaca")[0]
    assert parse(rec["text"]) == [u(rec["instruction"]), a(rec["output"])]


def test_detection_and_ambiguity():
    assert detect(records("sharegpt"), "sft").layout == "sharegpt"
    assert detect(records("oasst1"), "sft").layout == "oasst1"
    assert detect(records("hh_rlhf"), "dpo").layout == "hh_rlhf"
    assert detect(records("gsm8k"), "grpo").layout == "gsm8k"
    assert detect(records("math"), "grpo").layout == "math"
    assert detect(records("alpaca"), "sft").layout == "alpaca"  # its `text` column is a rendering, not a rival
    assert detect(records("ultrafeedback"), "dpo").layout == "ultrafeedback"
    assert detect(records("orca_dpo"), "dpo", {"prompt": "question"}).layout == "dpo"
    found = detect(records("messages"), "sft")  # no_robots has `prompt` and `messages`: messages, unambiguous
    assert (found.layout, found.ambiguous) == ("messages", False)
    both = detect([{"messages": [u("q"), a("r")], "question": "q", "answer": "r"}], "sft")
    assert both.ambiguous and both.candidates == ["messages", "question_answer"]
    nothing = detect(records("alpaca"), "dpo")
    assert nothing.layout is None and "cannot feed dpo" in nothing.why
