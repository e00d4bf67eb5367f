"""FewRowLinear (ftui.evaluate.few_rows) gives torch.nn.Linear's numbers for every row count,
takes its own path for 1 to 4 rows only, is put only where it applies, and leaves greedy
answers of a real-sized layer stack as they were."""

from __future__ import annotations

import pytest
import torch
from transformers import LlamaConfig, LlamaForCausalLM

from ftui.evaluate import few_rows
from ftui.evaluate.few_rows import FEW_ROWS, FewRowLinear, narrow_decoding


@pytest.fixture
def linear_calls(monkeypatch) -> list[int]:
    """Rows of every call of a big layer that reaches torch.nn.functional.linear (the plain
    path)."""
    calls: list[int] = []
    plain = torch.nn.functional.linear

    def counted(x, weight, bias=None):
        if weight.numel() >= few_rows.BIG_WEIGHT:
            calls.append(x.numel() // x.shape[-1])
        return plain(x, weight, bias)

    monkeypatch.setattr(torch.nn.functional, "linear", counted)
    return calls


@pytest.mark.parametrize("bias", [False, True])
def test_same_numbers_as_linear_for_every_row_count(linear_calls, bias):
    torch.manual_seed(0)
    layer = torch.nn.Linear(576, 1536, bias=bias)
    reference = torch.nn.Linear(576, 1536, bias=bias)
    reference.load_state_dict(layer.state_dict())
    assert narrow_decoding(layer) == 1 and type(layer) is FewRowLinear
    for shape in [(1, 1, 576), (2, 1, 576), (1, 3, 576), (4, 1, 576), (5, 1, 576), (16, 576)]:
        x = torch.randn(shape)
        linear_calls.clear()
        ours, plain = layer(x), reference(x)
        rows = x.numel() // 576
        assert ours.shape == plain.shape and ours.is_contiguous()
        torch.testing.assert_close(ours, plain, rtol=1e-5, atol=1e-5)
        plain_calls = [rows] if rows <= FEW_ROWS else [rows, rows]  # the reference's; ours?
        assert linear_calls == plain_calls


def test_put_only_where_it_applies():
    big, small = torch.nn.Linear(576, 1536), torch.nn.Linear(576, 16)
    assert small.weight.numel() < few_rows.BIG_WEIGHT
    half = torch.nn.Linear(576, 1536).to(torch.bfloat16)
    model = torch.nn.Sequential(big, small, half, torch.nn.Embedding(4096, 576))
    assert narrow_decoding(model) == 1
    assert [type(m) for m in model] == [
        FewRowLinear, torch.nn.Linear, torch.nn.Linear, torch.nn.Embedding
    ]  # fmt: skip
    assert isinstance(big, torch.nn.Linear) and set(big.state_dict()) == {"weight", "bias"}
    assert narrow_decoding(model) == 0  # twice is once


def test_greedy_answers_unchanged_on_a_real_sized_stack(linear_calls):
    """A random Llama with SmolLM2-135M's layer widths (two layers): transformers' greedy
    generate gives the same tokens before and after, one row and three rows."""
    config = LlamaConfig(
        vocab_size=8192, hidden_size=576, intermediate_size=1536, num_hidden_layers=2,
        num_attention_heads=9, num_key_value_heads=3, pad_token_id=0, eos_token_id=2,
    )  # fmt: skip
    torch.manual_seed(3)
    model = LlamaForCausalLM(config).eval()
    prompts = torch.randint(3, 8192, (3, 20), generator=torch.Generator().manual_seed(4))

    def answers() -> list[list[int]]:
        with torch.inference_mode():
            one = [model.generate(p[None], max_new_tokens=24, do_sample=False) for p in prompts]
            three = model.generate(prompts, max_new_tokens=24, do_sample=False)
        return [row[0, 20:].tolist() for row in one] + three[:, 20:].tolist()

    before = answers()
    # q, o, gate, up and down a layer, and the LM head; k and v (576 -> 192) are small
    assert narrow_decoding(model) == 2 * 5 + 1
    linear_calls.clear()
    assert answers() == before
    assert linear_calls and max(linear_calls) == 20 * 3  # the prompts took the plain path
    assert 1 not in linear_calls and 3 not in linear_calls  # the decoding steps did not
