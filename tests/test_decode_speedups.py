"""The two decoding shortcuts give the numbers of the slow paths they replace.

RoomyCache (appending in place) against transformers' DynamicCache, step for step on a tiny
random Llama, through cropping and row selection; RowScaledLora (per-row LoRA scales in one
ordinary forward) against peft's own mixed-adapter batch and against separate adapter-on and
adapter-off forwards, exactly; the cases it declines; the Playground's three-column stream
going through it with the answers of one column at a time; and guesses from the prompt
(ftui.evaluate.drafts) giving transformers' greedy answer in fewer forwards.
"""

from __future__ import annotations

import pytest
import torch
from test_eval_speed import PAD, lora_comparison, one_after_another, question, tiny_llama
from transformers import DynamicCache

from ftui.evaluate import side_by_side
from ftui.evaluate.compare import VARIANTS
from ftui.evaluate.drafts import guess
from ftui.evaluate.kv_rows import RowBatch
from ftui.evaluate.lora_rows import BASE, RowScaledLora
from ftui.evaluate.roomy_cache import RoomyCache

__all__ = ["lora_comparison"]  # a fixture, imported for the stream test


def greedy_steps(model, cache, prompt: torch.Tensor, steps: int) -> tuple[list, list]:
    """Greedy tokens and each step's logits, the prompt then `steps` single tokens."""
    tokens, logits = [], []
    with torch.inference_mode():
        out = model(input_ids=prompt, cache=cache, use_cache=True)
        for _ in range(steps):
            logits.append(out.logits[:, -1])
            token = out.logits[:, -1].argmax(-1, keepdim=True)
            tokens.append(token)
            out = model(input_ids=token, cache=cache, use_cache=True)
    return tokens, logits


def test_a_roomy_cache_holds_what_a_dynamic_cache_holds_and_appends_in_place():
    model = tiny_llama(seed=5)
    prompt = torch.randint(3, 256, (3, 40), generator=torch.Generator().manual_seed(1))
    plain, roomy = DynamicCache(), RoomyCache()
    tokens, logits = greedy_steps(model, plain, prompt, 20)
    roomy_tokens, roomy_logits = greedy_steps(model, roomy, prompt, 20)
    assert all(torch.equal(a, b) for a, b in zip(tokens, roomy_tokens, strict=True))
    assert all(torch.equal(a, b) for a, b in zip(logits, roomy_logits, strict=True))
    for a, b in zip(plain.layers, roomy.layers, strict=True):
        assert torch.equal(a.keys, b.keys) and torch.equal(a.values, b.values)
    layer = roomy.layers[0]
    assert layer.keys.shape[-2] == 60 and layer._key_room.shape[-2] > 60  # room to spare
    before = layer._key_room.data_ptr()
    greedy_steps(model, roomy, tokens[-1], 3)
    assert layer._key_room.data_ptr() == before  # written in place, nothing copied


def test_a_cropped_or_row_selected_roomy_cache_goes_on_like_a_dynamic_one():
    model = tiny_llama(seed=6)
    prompt = torch.randint(3, 256, (4, 30), generator=torch.Generator().manual_seed(2))
    caches = DynamicCache(), RoomyCache()
    for cache in caches:
        greedy_steps(model, cache, prompt, 5)
        for layer in cache.layers:  # what RowBatch.rewind does
            layer.keys, layer.values = layer.keys[..., :32, :], layer.values[..., :32, :]
        cache.batch_select_indices(torch.tensor([0, 2]))
    rows = prompt[[0, 2], -1:]
    results = [greedy_steps(model, cache, rows, 6) for cache in caches]
    assert all(torch.equal(a, b) for a, b in zip(results[0][1], results[1][1], strict=True))


@pytest.fixture
def lora_model():
    from peft import LoraConfig, get_peft_model

    base = tiny_llama(seed=8)
    config = LoraConfig(r=4, lora_alpha=8, target_modules="all-linear", init_lora_weights=False)
    return get_peft_model(base, config).eval()


def test_row_scaled_lora_equals_peft_mixed_batches_and_separate_forwards(lora_model):
    wrapper = RowScaledLora.of(lora_model)
    assert wrapper is not None and wrapper.device == lora_model.device
    ids = torch.randint(3, 256, (4, 9), generator=torch.Generator().manual_seed(3))
    names = [BASE, "default", BASE, "default"]
    with torch.inference_mode():
        ours = wrapper(input_ids=ids, adapter_names=names).logits
        peft_mixed = lora_model(input_ids=ids, adapter_names=names).logits
        tuned = lora_model(input_ids=ids).logits
        with lora_model.disable_adapter():
            base = lora_model(input_ids=ids).logits
    assert torch.equal(ours, peft_mixed)
    assert torch.equal(ours[[0, 2]], base[[0, 2]]) and torch.equal(ours[[1, 3]], tuned[[1, 3]])
    assert not torch.equal(base[1], tuned[1])  # the adapter does change the answer
    assert all(isinstance(layer.scaling["default"], float) for layer in wrapper.layers)


def test_row_scaled_lora_declines_what_peft_must_route_itself(lora_model):
    from peft import LoraConfig, get_peft_model

    with pytest.raises(ValueError, match="other than"):
        RowScaledLora.of(lora_model)(input_ids=torch.tensor([[5]]), adapter_names=["other"])
    dora = get_peft_model(tiny_llama(seed=9), LoraConfig(r=4, use_dora=True))
    saved = get_peft_model(
        tiny_llama(seed=9), LoraConfig(r=4, modules_to_save=["lm_head"])
    )  # a trained copy of a whole module: rows must be routed to one copy or the other
    assert RowScaledLora.of(dora) is None and RowScaledLora.of(saved) is None
    assert RowScaledLora.of(tiny_llama(seed=9)) is None  # no adapter at all


def test_the_three_columns_go_through_row_scaled_lora(lora_comparison, monkeypatch):
    calls = []
    original = RowScaledLora.__call__

    def counted(self, *args, **kwargs):
        calls.append(kwargs.get("adapter_names"))
        return original(self, *args, **kwargs)

    monkeypatch.setattr(RowScaledLora, "__call__", counted)
    compare = lora_comparison
    chats = {v: compare.chat(question("My card was declined twice."), v) for v in VARIANTS}
    final, done = list(side_by_side.stream_variants(compare, chats, 10))[-1]
    assert done == set(VARIANTS) and any(names and BASE in names for names in calls)
    assert {v: a.text for v, a in final.items()} == one_after_another(compare, chats, 10)


# ---------------------------------------------------------------- guesses from the prompt


def test_guesses_follow_the_latest_earlier_match_of_the_last_tokens():
    assert guess([1, 2, 3, 9, 1, 2, 3], 5) == [9, 1, 2, 3]  # [1 2 3] seen before: what followed
    assert guess([4, 8, 1, 7, 4, 8], 3) == [1, 7, 4]  # a 2-token match when no 3-token one
    assert guess([4, 8, 4, 8, 5, 4, 8], 9) == [5, 4, 8]  # the latest match wins
    assert guess([5, 6, 7, 5], 4) == []  # one matching token is too weak a hint
    assert guess([1, 2, 3, 1, 2], 0) == []  # no budget left


def test_drafted_answers_equal_generate_with_fewer_forwards(tokenizer, monkeypatch):
    """The bundled model copying a sentence: guesses come true, so fewer forwards give
    transformers' own greedy answer, token for token."""
    from transformers import AutoModelForCausalLM

    from ftui.evaluate import drafts
    from ftui.evaluate.decoding import answer_rows
    from ftui.models import bundled_model_dir

    model = AutoModelForCausalLM.from_pretrained(bundled_model_dir()).eval()
    sentence = "The parcel left our warehouse in Leeds on Monday and reaches you by Friday."
    chat = [{"role": "user", "content": f"Repeat this sentence exactly: {sentence}"}]
    prompt = tokenizer.apply_chat_template(chat, add_generation_prompt=True, tokenize=False)
    ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
    stop = {tokenizer.eos_token_id, tokenizer.convert_tokens_to_ids("<|im_end|>")}
    with torch.inference_mode():
        expected = model.generate(
            input_ids=torch.tensor([ids]), max_new_tokens=24, do_sample=False,
            eos_token_id=sorted(stop), pad_token_id=tokenizer.pad_token_id,
        )[0, len(ids):].tolist()  # fmt: skip
    widths = []
    original = RowBatch.forward

    def counted(self, model, tokens, valid=None, last_only=False):
        widths.append(tokens.shape[1])
        return original(self, model, tokens, valid, last_only)

    monkeypatch.setattr(RowBatch, "forward", counted)
    with torch.inference_mode():
        [result] = answer_rows(model, [ids], 24, stop, tokenizer.pad_token_id)
    assert result.tokens == expected and sentence[:20] in tokenizer.decode(result.tokens)
    decoding_forwards = len(widths) - 1  # the first one reads the prompt
    assert max(widths[1:]) == drafts.FED_TOKENS["cpu"] and decoding_forwards < len(expected) - 4


def test_prompts_read_a_few_rows_at_a_time_give_the_same_answers_and_scores(monkeypatch):
    """RowBatch.start reads many prompts PREFILL_ROWS at a time and joins the pieces (short
    rows are not padded to the longest of all): answers and reference scores as before."""
    from test_eval_speed import full_forward_nll, generate_greedy, rows_with_a_shared_start

    from ftui.evaluate import kv_rows
    from ftui.evaluate.decoding import answer_rows

    model = tiny_llama(seed=11)
    prompts = rows_with_a_shared_start([14, 2, 9, 5, 11, 1, 7, 3])
    references = [[5, 6], [7], [], [8, 9, 10], [11], [12, 13], [14], [15, 16, 17]]
    expected = generate_greedy(model, prompts, 8, stop=2)
    joined = []
    original = RowBatch.join.__func__
    monkeypatch.setattr(kv_rows, "PREFILL_ROWS", 3)
    monkeypatch.setattr(
        RowBatch,
        "join",
        classmethod(lambda cls, parts: joined.append(len(parts)) or original(cls, parts)),
    )
    with torch.inference_mode():
        results = answer_rows(model, prompts, 8, {2}, PAD, references, batch_size=8)
    assert joined == [3]  # 8 rows read as 3 + 3 + 2
    assert [r.tokens for r in results] == expected
    for prompt, reference, result in zip(prompts, references, results, strict=True):
        assert result.reference_nll == pytest.approx(full_forward_nll(model, prompt, reference))
