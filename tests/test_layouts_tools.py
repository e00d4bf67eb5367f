"""Tool-calling conversations, content parts and per-turn weights, end to end on small files.

OpenAI chat rows (`tools`, assistant `tool_calls`, `tool` turns, content parts, `weight`) and
ShareGPT rows (`function_call` / `observation` turns, a `tools` column) are detected, rendered
through a real chat template that supports tools (written here and set on a copy of the
bundled tokenizer: nothing is downloaded), and tokenized with the loss on every assistant turn
not weighted 0, tool calls included. The bundled model's own template drops tools, so data
with tools is refused for it, naming the template.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from ftui.config import DataConfig
from ftui.data.check import check_file
from ftui.data.errors import DataError
from ftui.data.examples import to_example
from ftui.data.preview import load_preview
from ftui.data.tokens import BAD_ANSWER, TRAINED, WEIGHT_ZERO, highlighted_tokens
from ftui.data.training_data import load_training_data, load_training_rows

# A ChatML template that renders tools and tool calls (in the style of Qwen's).
TOOL_TEMPLATE = (
    "{% if tools %}<|im_start|>system\n"
    "{% if messages[0]['role'] == 'system' %}{{ messages[0]['content'] }}\n\n{% endif %}"
    "You may call these tools:\n{% for tool in tools %}{{ tool | tojson }}\n{% endfor %}"
    'Call one as <tool_call>{"name": ..., "arguments": ...}</tool_call>.<|im_end|>\n'
    "{% elif messages[0]['role'] == 'system' %}<|im_start|>system\n"
    "{{ messages[0]['content'] }}<|im_end|>\n{% endif %}"
    "{% for message in messages %}{% if message['role'] != 'system' %}"
    "<|im_start|>{{ message['role'] }}\n{{ message['content'] }}"
    "{% for call in message.get('tool_calls') or [] %}<tool_call>"
    "{{ {'name': call['function']['name'], 'arguments': call['function']['arguments']} | tojson }}"
    "</tool_call>{% endfor %}<|im_end|>\n{% endif %}{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather in a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
    },
}
OPENAI_ROW = {
    "messages": [
        {"role": "user", "content": [{"type": "text", "text": "Weather in Paris?"}]},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "call_1",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "call_1", "content": '{"celsius": 21}'},
        {"role": "assistant", "content": "It is 21 degrees in Paris."},
    ],
    "tools": [WEATHER_TOOL],
}
SHAREGPT_ROW = {
    "conversations": [
        {"from": "human", "value": "Weather in Oslo?"},
        {
            "from": "function_call",
            "value": '{"name": "get_weather", "arguments": {"city": "Oslo"}}',
        },
        {"from": "observation", "value": '{"celsius": 4}'},
        {"from": "gpt", "value": "It is 4 degrees in Oslo."},
    ],
    "system": "You answer weather questions.",
    "tools": json.dumps([WEATHER_TOOL["function"]]),  # LLaMA-Factory: bare functions, as text
}


@pytest.fixture(scope="module")
def tool_tokenizer(tokenizer):
    """The bundled tokenizer with a chat template that renders tools."""
    copied = copy.deepcopy(tokenizer)
    copied.chat_template = TOOL_TEMPLATE
    return copied


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return path


def trained(segments, label=TRAINED) -> str:
    return "".join(text for text, mark in segments if mark == label)


def test_openai_tool_calls_are_detected_and_checked(tmp_path):
    report = check_file(write_jsonl(tmp_path / "tools.jsonl", [OPENAI_ROW] * 3))
    assert report.ok, report.summary_text()
    assert report.format == "chat" and report.columns == {"messages": "messages", "tools": "tools"}
    assert report.features == ["tools", "tool calls", "tool results"]
    assert report.to_dict()["layout"] == "chat with tools, tool calls, tool results"


def test_openai_row_normalises_calls_parts_and_tool_results():
    example = to_example(OPENAI_ROW, "chat", {"messages": "messages", "tools": "tools"})
    user, call, result, answer = example["messages"]
    assert user == {"role": "user", "content": "Weather in Paris?"}  # text parts joined
    assert call["content"] == "" and call["tool_calls"] == [
        {
            "type": "function",
            "function": {"name": "get_weather", "arguments": {"city": "Paris"}},
            "id": "call_1",
        }
    ]  # arguments parsed from JSON text into an object, as templates expect
    assert result == {"role": "tool", "content": '{"celsius": 21}', "tool_call_id": "call_1"}
    assert answer["content"] == "It is 21 degrees in Paris."
    assert example["tools"] == [WEATHER_TOOL]


def test_sharegpt_function_call_and_observation_turns(tmp_path):
    report = check_file(write_jsonl(tmp_path / "share.jsonl", [SHAREGPT_ROW] * 3))
    assert report.ok and report.format == "sharegpt", report.summary_text()
    assert report.columns == {
        "conversations": "conversations",
        "system": "system",
        "tools": "tools",
    }
    example = to_example(SHAREGPT_ROW, "sharegpt", report.columns)
    system, _, call, result, _ = example["messages"]
    assert system == {"role": "system", "content": "You answer weather questions."}
    assert call["tool_calls"][0]["function"] == {
        "name": "get_weather",
        "arguments": {"city": "Oslo"},
    }
    assert result == {"role": "tool", "content": '{"celsius": 4}'}
    assert example["tools"] == [WEATHER_TOOL]  # the bare function wrapped in OpenAI's shape


def test_tool_calls_render_through_the_template_and_carry_the_loss(tool_tokenizer):
    example = to_example(OPENAI_ROW, "chat", {"messages": "messages", "tools": "tools"})
    segments = highlighted_tokens(tool_tokenizer, example)
    text = "".join(piece for piece, _ in segments)
    assert "Current weather in a city" in text  # the tools list, through tools=
    loss = trained(segments)
    assert '<tool_call>{"name": "get_weather", "arguments": {"city": "Paris"}}</tool_call>' in loss
    assert "It is 21 degrees in Paris." in loss
    assert "celsius" not in loss and "Weather in Paris?" not in loss  # tool results: context
    assert "Current weather" not in loss


def test_training_rows_hold_the_same_labels_the_data_tab_shows(tmp_path, tool_tokenizer):
    path = write_jsonl(tmp_path / "tools.jsonl", [OPENAI_ROW] * 4)
    data = DataConfig(path=str(path), validation_fraction=0.0)
    train, validation = load_training_data(data, "instruction", tool_tokenizer)
    assert validation is None and train.column_names == ["input_ids", "labels"]
    row = train[0]
    learned = [
        token for token, label in zip(row["input_ids"], row["labels"], strict=True) if label != -100
    ]
    learned_text = tool_tokenizer.decode(learned)
    example = to_example(OPENAI_ROW, "chat", {"messages": "messages", "tools": "tools"})
    assert learned_text == trained(highlighted_tokens(tool_tokenizer, example))
    assert '"city": "Paris"' in learned_text and "21 degrees" in learned_text


def test_turn_weights_leave_a_turn_out_of_the_loss(tool_tokenizer, tmp_path):
    row = {
        "messages": [
            {"role": "user", "content": "Hi"},
            {"role": "assistant", "content": "Hullo, old chap", "weight": 0},
            {"role": "user", "content": "Again, politely"},
            {"role": "assistant", "content": "Hello there", "weight": 1},
        ]
    }
    example = to_example(row, "chat", {"messages": "messages"})
    segments = highlighted_tokens(tool_tokenizer, example)
    assert "Hello there" in trained(segments) and "Hullo" not in trained(segments)
    assert "Hullo, old chap" in trained(segments, WEIGHT_ZERO)  # shown as left out
    data = DataConfig(path=str(write_jsonl(tmp_path / "w.jsonl", [row] * 3)))
    data.validation_fraction = 0.0
    labels = load_training_data(data, "instruction", tool_tokenizer)[0][0]["labels"]
    learned = tool_tokenizer.decode([label for label in labels if label != -100])
    assert "Hello there" in learned and "Hullo" not in learned
    prompt_completion = load_training_rows(data)[0][0]  # the Playground's reference answer
    assert prompt_completion["completion"][0]["content"] == "Hello there"


def test_loss_weight_spelling_and_bad_weights(tmp_path):
    ok = {
        "messages": [
            {"role": "user", "content": "Q"},
            {"role": "assistant", "content": "A", "loss_weight": 0.0},
        ]
    }
    assert to_example(ok, "chat", {"messages": "messages"})["messages"][1]["weight"] == 0
    report = check_file(write_jsonl(tmp_path / "zero.jsonl", [ok] * 3))
    assert not report.ok and "every assistant turn has weight 0" in report.summary_text()
    half = copy.deepcopy(ok)
    half["messages"][1]["loss_weight"] = 0.5
    report = check_file(write_jsonl(tmp_path / "half.jsonl", [half] * 3))
    assert "loss_weight=0.5; a turn's weight is 0 (not trained) or 1" in report.summary_text()
    assert "fractional weights are not supported" in report.summary_text()


def test_images_in_content_parts_are_refused_saying_what_to_change(tmp_path):
    row = {
        "messages": [
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "What is in this picture?"},
                    {"type": "image_url", "image_url": {"url": "https://example.com/cat.png"}},
                ],
            },
            {"role": "assistant", "content": "A cat."},
        ]
    }
    report = check_file(write_jsonl(tmp_path / "image.jsonl", [row] * 3))
    text = report.summary_text()
    assert not report.ok and "message 1 (user) has a 'image_url' content part" in text
    assert "text-only models" in text and "Remove the image, audio or file parts" in text


def test_the_bundled_template_drops_tools_so_tool_data_is_refused(tokenizer, tmp_path):
    example = to_example(OPENAI_ROW, "chat", {"messages": "messages", "tools": "tools"})
    with pytest.raises(DataError) as caught:
        highlighted_tokens(tokenizer, example)
    message = str(caught.value)
    assert (
        f"the chat template of {tokenizer.name_or_path} does not render the tools list" in message
    )
    assert "Choose a model whose chat template supports tool calling" in message
    preview = load_preview(
        str(write_jsonl(tmp_path / "t.jsonl", [OPENAI_ROW] * 3)), tokenizer=tokenizer
    )
    assert not preview.ok and "does not render" in preview.report.errors[-1].message
    plain = {
        "messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Yo"}]
    }
    assert trained(
        highlighted_tokens(tokenizer, to_example(plain, "chat", {"messages": "messages"}))
    )


def test_kto_bad_answers_are_marked_in_the_rendered_example(tool_tokenizer):
    row = {"prompt": "Refund?", "completion": "No way.", "label": False}
    columns = {"prompt": "prompt", "completion": "completion", "label": "label"}
    segments = highlighted_tokens(tool_tokenizer, to_example(row, "kto", columns))
    assert "No way." in trained(segments, BAD_ANSWER) and not trained(segments)
