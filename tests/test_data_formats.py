"""Format detection, column mapping, row normalisation and the train/validation split."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from ftui.data.errors import DataError
from ftui.data.examples import examples_from_frame, to_example
from ftui.data.formats import detect_format, resolve_columns
from ftui.data.layouts import FORMAT_ROLES, FORMATS
from ftui.data.reading import read_table
from ftui.data.split import split_train_validation

HI = [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"}]
HI_SHAREGPT = [{"from": "human", "value": "Hi"}, {"from": "gpt", "value": "Hello"}]


def frame(**columns: list) -> pd.DataFrame:
    return pd.DataFrame(columns)


def test_every_format_has_roles():
    assert set(FORMAT_ROLES) == set(FORMATS)
    assert FORMAT_ROLES["alpaca"] == (("instruction", "output"), ("input", "system"))


@pytest.mark.parametrize(
    ("df", "expected_format", "expected_columns"),
    [
        pytest.param(
            frame(instruction=["a"], input=[""], output=["b"]),
            "alpaca",
            {"instruction": "instruction", "output": "output", "input": "input"},
            id="alpaca",
        ),
        pytest.param(
            frame(Instruction=["a"], INPUT=[""], Output=["b"], System=["s"]),
            "alpaca",
            {
                "instruction": "Instruction",
                "output": "Output",
                "input": "INPUT",
                "system": "System",
            },
            id="alpaca-uppercase",
        ),
        pytest.param(frame(messages=[HI]), "chat", {"messages": "messages"}, id="chat"),
        pytest.param(
            frame(conversations=[HI_SHAREGPT], system=["Be kind"]),
            "sharegpt",
            {"conversations": "conversations", "system": "system"},
            id="sharegpt",
        ),
        pytest.param(
            frame(messages=[json.dumps(HI_SHAREGPT)]),
            "sharegpt",
            {"conversations": "messages"},
            id="messages-column-holding-sharegpt-json",
        ),
        pytest.param(
            frame(conversations=[HI]),
            "chat",
            {"messages": "conversations"},
            id="conversations-column-holding-chat",
        ),
        pytest.param(
            frame(prompt=["2+2="], completion=["4"]),
            "prompt_completion",
            {"prompt": "prompt", "completion": "completion"},
            id="prompt-completion",
        ),
        pytest.param(frame(text=["a doc"], id=[1]), "text", {"text": "text"}, id="text"),
        pytest.param(
            frame(prompt=["Hi"], chosen=["Hello"], rejected=["Go"]),
            "preference",
            {"chosen": "chosen", "rejected": "rejected", "prompt": "prompt"},
            id="preference",
        ),
        pytest.param(
            frame(instruction=["a"], output=["b"], text=["c"]),
            "alpaca",
            {"instruction": "instruction", "output": "output"},
            id="alpaca-beats-text",
        ),
    ],
)
def test_detect_format_confident(df, expected_format, expected_columns):
    detection = detect_format(df)
    assert detection.format == expected_format, detection.reason
    assert detection.columns == expected_columns
    assert detection.confident, detection.reason
    assert detection.candidates[0] == expected_format


def test_synonyms_are_matched_but_not_confident():
    detection = detect_format(frame(Question=["q"], Answer=["a"], context=["c"]))
    assert detection.format == "alpaca"
    assert detection.columns == {"instruction": "Question", "output": "Answer", "input": "context"}
    assert not detection.confident
    assert "similar column names" in detection.reason


def test_several_formats_matching_equally_is_not_confident():
    detection = detect_format(frame(prompt=["p"], completion=["c"], chosen=["a"], rejected=["b"]))
    assert detection.format == "preference"
    assert set(detection.candidates) == {"preference", "prompt_completion"}
    assert not detection.confident
    assert "several formats" in detection.reason


def test_single_column_of_strings_is_text():
    detection = detect_format(frame(sentence=["one", "two"]))
    assert (detection.format, detection.columns) == ("text", {"text": "sentence"})
    assert not detection.confident


def test_unknown_columns_give_no_format_and_say_what_was_expected():
    detection = detect_format(frame(foo=[1], bar=[2]))
    assert detection.format is None and detection.columns == {}
    assert "columns found are foo, bar" in detection.reason
    assert "instruction/output (alpaca)" in detection.reason
    assert "chosen/rejected (preference)" in detection.reason


def test_resolve_columns_merges_user_mapping_over_detection():
    df = frame(question=["q"], answer=["a"], notes=["n"])
    columns = resolve_columns(df, "alpaca", {"input": "notes", "system": ""})
    assert columns == {"instruction": "question", "output": "answer", "input": "notes"}
    assert resolve_columns(df, "alpaca", {"output": "notes"})["output"] == "notes"


@pytest.mark.parametrize(
    ("fmt", "mapping", "message"),
    [
        ("alpaca", {"output": "answr"}, "unknown column 'answr'; columns are: q, a"),
        ("alpaca", {"reply": "a"}, "unknown role 'reply' for alpaca. Roles are: instruction"),
        ("alpaca", None, "no column for 'instruction' (alpaca needs instruction, output)"),
        ("alpaca", {"instruction": "q"}, "no column for 'output'"),
        ("chat", None, "no column for 'messages'"),
        ("tweets", None, "unknown format 'tweets'"),
    ],
)
def test_resolve_columns_errors(fmt, mapping, message):
    with pytest.raises(DataError) as caught:
        resolve_columns(frame(q=["x"], a=["y"]), fmt, mapping)
    assert message in str(caught.value)


ALPACA = {"instruction": "instruction", "input": "input", "output": "output", "system": "system"}


def test_alpaca_row_becomes_messages():
    row = {"instruction": "Classify", "input": "printer on fire", "output": "urgent", "system": ""}
    assert to_example(row, "alpaca", ALPACA, system_prompt="You triage.") == {
        "messages": [
            {"role": "system", "content": "You triage."},
            {"role": "user", "content": "Classify\n\nprinter on fire"},
            {"role": "assistant", "content": "urgent"},
        ]
    }


def test_alpaca_row_system_column_wins_and_missing_input_is_skipped():
    row = {"instruction": "Add", "input": float("nan"), "output": 4, "system": "Be exact."}
    assert to_example(row, "alpaca", ALPACA, system_prompt="ignored")["messages"] == [
        {"role": "system", "content": "Be exact."},
        {"role": "user", "content": "Add"},
        {"role": "assistant", "content": "4"},
    ]


def test_chat_row_from_json_string_gets_system_prompt_once():
    columns = {"messages": "messages"}
    example = to_example({"messages": json.dumps(HI)}, "chat", columns, "Be brief.")
    assert example["messages"] == [{"role": "system", "content": "Be brief."}, *HI]
    with_system = [{"role": "system", "content": "Own."}, *HI]
    example = to_example({"messages": with_system}, "chat", columns, "Be brief.")
    assert example["messages"] == with_system


def test_sharegpt_roles_are_mapped():
    turns = [
        {"from": "system", "value": "S"},
        {"from": "human", "value": "What time is it?"},
        {"from": "function_call", "value": '{"name": "clock"}'},
        {"from": "observation", "value": "12:00"},
        {"from": "gpt", "value": "Noon."},
    ]
    example = to_example({"conversations": turns}, "sharegpt", {"conversations": "conversations"})
    roles = [m["role"] for m in example["messages"]]
    assert roles == ["system", "user", "assistant", "tool", "assistant"]
    assert example["messages"][-1]["content"] == "Noon."


def test_sharegpt_system_column_is_prepended():
    columns = {"conversations": "c", "system": "s"}
    example = to_example({"c": HI_SHAREGPT, "s": "Be kind."}, "sharegpt", columns)
    assert example["messages"] == [{"role": "system", "content": "Be kind."}, *HI]


def test_prompt_completion_text_and_conversational():
    columns = {"prompt": "prompt", "completion": "completion"}
    assert to_example({"prompt": "2+2=", "completion": "4"}, "prompt_completion", columns) == {
        "messages": [{"role": "user", "content": "2+2="}, {"role": "assistant", "content": "4"}]
    }
    row = {"prompt": HI[:1], "completion": HI[1:]}
    assert to_example(row, "prompt_completion", columns) == {"messages": HI}


def test_text_row():
    assert to_example({"body": "A document."}, "text", {"text": "body"}) == {"text": "A document."}


def test_preference_rows():
    columns = {"prompt": "prompt", "chosen": "chosen", "rejected": "rejected"}
    row = {"prompt": "Hi", "chosen": "Hello!", "rejected": "Go away."}
    assert to_example(row, "preference", columns) == {
        "prompt": [{"role": "user", "content": "Hi"}],
        "chosen": [{"role": "assistant", "content": "Hello!"}],
        "rejected": [{"role": "assistant", "content": "Go away."}],
    }
    no_prompt = to_example(row, "preference", {"chosen": "chosen", "rejected": "rejected"})
    assert no_prompt["prompt"] == []
    conversational = {"chosen": HI, "rejected": HI[:1]}
    example = to_example(conversational, "preference", {"chosen": "chosen", "rejected": "rejected"})
    assert example["chosen"] == HI and example["rejected"] == HI[:1]


def test_parquet_nested_messages_round_trip(tmp_path):
    path = tmp_path / "chat.parquet"
    pd.DataFrame({"messages": [HI, [*HI, *HI]]}).to_parquet(path)
    df = read_table(path)
    assert isinstance(df["messages"][0], np.ndarray)  # what pyarrow gives back
    detection = detect_format(df)
    assert detection.format == "chat"
    examples = examples_from_frame(df, "chat", detection.columns)
    assert examples == [{"messages": HI}, {"messages": HI + HI}]


def test_examples_from_frame_names_the_bad_row():
    df = frame(instruction=["ok", {"nested": True}], output=["a", "b"])
    with pytest.raises(DataError, match="row 2: instruction should be text but is an object"):
        examples_from_frame(df, "alpaca", {"instruction": "instruction", "output": "output"})


def test_split_is_deterministic_and_complete():
    df = pd.DataFrame({"text": [f"row {i}" for i in range(100)]})
    train, validation = split_train_validation(df, 0.1, seed=42)
    again_train, again_validation = split_train_validation(df, 0.1, seed=42)
    assert (len(train), len(validation)) == (90, 10)
    assert train.equals(again_train) and validation.equals(again_validation)
    assert sorted(train["text"].tolist() + validation["text"].tolist()) == sorted(df["text"])
    assert list(train.index) == list(range(90)) and list(validation.index) == list(range(10))
    other = split_train_validation(df, 0.1, seed=7)[1]
    assert set(other["text"]) != set(validation["text"])


@pytest.mark.parametrize(
    ("rows", "fraction", "sizes"),
    [(10, 0.0, (10, 0)), (1, 0.5, (1, 0)), (2, 0.9, (1, 1)), (3, 0.01, (2, 1)), (0, 0.2, (0, 0))],
)
def test_split_sizes_keep_a_train_row(rows, fraction, sizes):
    df = pd.DataFrame({"text": [str(i) for i in range(rows)]})
    train, validation = split_train_validation(df, fraction, seed=0)
    assert (len(train), len(validation)) == sizes


def test_split_rejects_a_fraction_of_one():
    with pytest.raises(ValueError, match=r"\[0, 1\)"):
        split_train_validation(pd.DataFrame({"text": ["a"]}), 1.0, seed=0)
