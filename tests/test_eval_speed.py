"""Faster evaluation and Playground answers give the answers the old code gave.

The shared-prefix KV cache (ftui.evaluate.kv_rows, ftui.evaluate.decoding) is checked against
transformers' own greedy `generate` and a full forward pass on tiny random Llamas in float64
(so only a real mistake in positions, masks or caches can change a token); the three-column
stream (ftui.evaluate.side_by_side) against Comparison.stream, one column at a time, for a
LoRA run (one mixed-adapter batch) and a full fine-tune (two models); its stall and failure
guards; then, on the bundled model, old and new evaluation of real validation rows; and
`ftui eval` / `ftui cancel` given a run folder instead of an id.
"""

from __future__ import annotations

import copy
import json
import subprocess
import sys
import time

import pytest
import torch
from conftest import REPO_ROOT, TINY_LLAMA, tiny_triage_config, wait_until

from ftui.config import FtuiConfig
from ftui.evaluate.compare import VARIANTS, Comparison, GenerationError, shot_from_pair
from ftui.evaluate.decoding import answer_rows
from ftui.evaluate.kv_rows import RowBatch, common_prefix_length
from ftui.evaluate.side_by_side import _mixed_adapter_batches, stream_variants

PAD = 0


def tiny_llama(seed: int, vocab_size: int = 256):
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    config = LlamaConfig(
        **{**TINY_LLAMA, "vocab_size": vocab_size}, bos_token_id=1, eos_token_id=2, pad_token_id=PAD
    )
    return LlamaForCausalLM(config).double().eval()


def rows_with_a_shared_start(lengths: list[int], shared: int = 12) -> list[list[int]]:
    generator = torch.Generator().manual_seed(7)
    start = torch.randint(3, 256, (shared,), generator=generator).tolist()
    return [start + torch.randint(3, 256, (n,), generator=generator).tolist() for n in lengths]


def generate_greedy(model, prompts: list[list[int]], new: int, stop: int) -> list[list[int]]:
    """transformers' greedy generate on a left-padded batch: each row up to its stop token."""
    width = max(len(p) for p in prompts)
    ids = torch.tensor([[PAD] * (width - len(p)) + p for p in prompts])
    mask = torch.tensor([[0] * (width - len(p)) + [1] * len(p) for p in prompts])
    with torch.inference_mode():
        output = model.generate(
            input_ids=ids, attention_mask=mask, max_new_tokens=new, do_sample=False,
            pad_token_id=PAD, eos_token_id=stop,
        )[:, width:].tolist()  # fmt: skip
    return [row[: row.index(stop) + 1] if stop in row else row for row in output]


def test_prefix_lengths():
    assert common_prefix_length([[1, 2, 3, 4], [1, 2, 3, 9], [1, 2, 5]]) == 2
    assert common_prefix_length([[1, 2, 3], [1, 2, 3]]) == 2  # each row keeps one token
    assert common_prefix_length([[4], [4, 5]]) == 0


def test_sampling_keeps_to_top_k_and_top_p():
    from ftui.evaluate.decoding import greedy, sampler

    logits = torch.randn(64, 50, generator=torch.Generator().manual_seed(3))
    assert torch.equal(sampler(0.7, 1, 1.0)(logits), greedy(logits))  # top_k 1: the likeliest
    assert torch.equal(sampler(1.0, None, 1e-6)(logits), greedy(logits))  # the smallest nucleus
    top_two = logits.topk(2).indices
    drawn = sampler(5.0, 2, 1.0)(logits)
    assert ((top_two == drawn[:, None]).any(dim=1)).all()
    assert (drawn != greedy(logits)).any()  # a hot temperature does draw the second one


def test_answers_equal_generate_and_scores_equal_a_full_forward():
    model = tiny_llama(seed=0)
    prompts = rows_with_a_shared_start([3, 9, 1, 6, 4, 7])
    references = [[5, 6, 7], [8], [], [9, 10, 11, 12], [13, 14], [15]]
    free_run = generate_greedy(model, prompts, 10, stop=2)
    # a token some rows produce and others do not: rows stop at different steps
    stop = next(t for t in free_run[1] if 2 <= sum(t in row for row in free_run) < len(prompts))
    expected = generate_greedy(model, prompts, 10, stop)
    assert any(len(row) < 10 for row in expected) and any(len(row) == 10 for row in expected)
    with torch.inference_mode():
        for batch_size in (4, 1):  # uneven batches, ghost rows, then one row at a time
            results = answer_rows(model, prompts, 10, {stop}, PAD, references, batch_size)
            assert [r.tokens for r in results] == expected
        for prompt, reference, result in zip(prompts, references, results, strict=True):
            assert result.reference_tokens == len(reference)
            assert result.reference_nll == pytest.approx(full_forward_nll(model, prompt, reference))


def full_forward_nll(model, prompt: list[int], reference: list[int]) -> float:
    if not reference:
        return 0.0
    logits = model(input_ids=torch.tensor([prompt + reference])).logits[0].float()
    logprobs = torch.log_softmax(logits[len(prompt) - 1 : -1], dim=-1)
    return float(-logprobs[torch.arange(len(reference)), torch.tensor(reference)].sum())


def test_a_row_batch_forgets_the_scored_reference_before_answering():
    model = tiny_llama(seed=1)
    prompts = rows_with_a_shared_start([2, 5])
    with torch.inference_mode():
        rows, logits = RowBatch.start(model, None, prompts, PAD)
        columns, lengths = rows.mask.shape[1], rows.lengths.clone()
        rows.forward(
            model, torch.tensor([[3, 4, 5], [6, PAD, PAD]]), torch.tensor([[1, 1, 1], [1, 0, 0]])
        )
        rows.rewind(columns, lengths)
        after = rows.forward(model, logits.argmax(-1)[:, None])[:, -1]
        fresh, first = RowBatch.start(model, None, prompts, PAD)
        assert torch.allclose(after, fresh.forward(model, first.argmax(-1)[:, None])[:, -1])


# ---------------------------------------------------------------- the Playground's three columns


@pytest.fixture
def lora_comparison(tokenizer):
    from peft import LoraConfig, get_peft_model

    base = tiny_llama(seed=2, vocab_size=len(tokenizer))
    lora = LoraConfig(r=4, target_modules=["q_proj", "v_proj"], init_lora_weights=False)
    model = get_peft_model(base, lora).eval()  # random A and B: fine-tuned answers differ
    shots = [shot_from_pair("Where is my parcel?", '{"category": "shipping"}')]
    return Comparison(FtuiConfig(), copy.deepcopy(tokenizer), model, model, shots, "cpu")


def question(text: str) -> list[dict[str, str]]:
    return [{"role": "system", "content": "Answer as JSON."}, {"role": "user", "content": text}]


def one_after_another(compare: Comparison, chats: dict, tokens: int) -> dict[str, str]:
    return {v: list(compare.stream(chat, v, tokens))[-1].text for v, chat in chats.items()}


def test_the_three_columns_stream_together_with_the_answers_of_one_at_a_time(lora_comparison):
    compare = lora_comparison
    assert _mixed_adapter_batches(compare)  # one forward serves base and adapter rows
    for text in ("I was charged twice.", "I was charged twice for my order."):
        chats = {v: compare.chat(question(text), v) for v in VARIANTS}
        updates = list(stream_variants(compare, chats, 12))
        first, _ = updates[0]
        assert all(first[v].new_tokens == 1 for v in VARIANTS)  # nobody waits for the others
        final, done = updates[-1]
        assert done == set(VARIANTS)
        assert {v: a.text for v, a in final.items()} == one_after_another(compare, chats, 12)
    assert set(compare.prefix_memo) == set(VARIANTS)  # the second question reused the first's
    assert final["fine_tuned"].text != final["base"].text  # the adapter was on for that row
    assert not compare.lock.locked()


def test_sampled_columns_stream_together_too(lora_comparison):
    compare = lora_comparison
    chats = {v: compare.chat(question("Where is my refund?"), v) for v in VARIANTS}
    torch.manual_seed(0)
    updates = list(stream_variants(compare, chats, 6, temperature=0.9, top_p=0.95))
    assert all(updates[0][0][v].new_tokens == 1 for v in VARIANTS)
    assert updates[-1][1] == set(VARIANTS) and not compare.lock.locked()


def test_a_full_fine_tune_streams_its_two_models_side_by_side(tokenizer):
    base, tuned = (tiny_llama(seed=s, vocab_size=len(tokenizer)) for s in (3, 4))
    compare = Comparison(FtuiConfig(), copy.deepcopy(tokenizer), base, tuned, [], "cpu")
    chats = {v: compare.chat(question("Reset my password."), v) for v in VARIANTS}
    final, _ = list(stream_variants(compare, chats, 10))[-1]
    assert {v: a.text for v, a in final.items()} == one_after_another(compare, chats, 10)


def test_a_model_with_a_repetition_penalty_streams_one_column_at_a_time(lora_comparison):
    compare = lora_comparison
    compare.base.generation_config.repetition_penalty = 1.3  # not what RowBatch decodes
    chats = {v: compare.chat(question("Cancel my plan."), v) for v in VARIANTS}
    updates = list(stream_variants(compare, chats, 8))
    assert updates[0][0]["fine_tuned"].new_tokens == 0  # the third column waited its turn
    assert {v: a.text for v, a in updates[-1][0].items()} == one_after_another(compare, chats, 8)


def test_a_stalled_step_ends_the_stream_and_the_decoding_stops(lora_comparison, monkeypatch):
    compare, calls = lora_comparison, []
    forward = RowBatch.forward

    def stalling_forward(self, *args, **kwargs):
        calls.append(1)
        if len(calls) == 5:  # three prompts, one decoding step, then a hung one
            time.sleep(3)
        return forward(self, *args, **kwargs)

    monkeypatch.setattr(RowBatch, "forward", stalling_forward)
    monkeypatch.setenv("FTUI_GENERATION_TIMEOUT_SECONDS", "0.5")
    chats = {v: compare.chat(question("Hello?"), v) for v in VARIANTS}
    started = time.perf_counter()
    with pytest.raises(GenerationError, match="no new text for 0.5 s"):
        list(stream_variants(compare, chats, 20))
    assert time.perf_counter() - started < 2.5
    wait_until(lambda: not compare.lock.locked(), timeout=15)
    assert len(calls) == 5  # told to stop right after the stalled step, not all 20


def test_a_failing_step_ends_the_stream_at_once_with_its_error(lora_comparison, monkeypatch):
    compare = lora_comparison
    monkeypatch.setattr(RowBatch, "forward", failing_forward)
    chats = {v: compare.chat(question("Hello?"), v) for v in VARIANTS}
    with pytest.raises(GenerationError, match="generation failed: RuntimeError: device lost"):
        list(stream_variants(compare, chats, 20))
    assert not compare.lock.locked() or wait_until(lambda: not compare.lock.locked(), 10)


def failing_forward(self, *args, **kwargs):
    raise RuntimeError("device lost")


# ---------------------------------------------------------------- the bundled model, old vs new


@pytest.mark.slow
def test_evaluation_answers_and_perplexity_equal_the_old_code_on_the_bundled_model(tmp_path):
    from ftui.evaluate.batch import answers_and_perplexity, perplexity, validation_rows

    compare = Comparison.load(run_with_a_changed_adapter(tmp_path), device="cpu")
    try:
        rows = validation_rows(compare, 4)
        tokens = compare.config.eval.max_new_tokens
        for variant in VARIANTS:
            assert compare.shares_cache(variant)
            answers, new_perplexity = answers_and_perplexity(compare, rows, variant, no_progress)
            chats = [compare.chat(row["prompt"], variant) for row in rows]
            old = compare.generate(chats, variant, tokens, do_sample=False)  # transformers'
            assert [a.text for a in answers] == [a.text for a in old]
            assert [a.new_tokens for a in answers] == [a.new_tokens for a in old]
            assert new_perplexity == pytest.approx(perplexity(compare, rows, variant), rel=1e-4)
        chats = {v: compare.chat(rows[0]["prompt"], v) for v in VARIANTS}
        final, _ = list(stream_variants(compare, chats, tokens))[-1]
        assert {v: a.text for v, a in final.items()} == one_after_another(compare, chats, tokens)
    finally:
        compare.close()


def no_progress(rows_done: int) -> None:
    pass


def run_with_a_changed_adapter(folder):
    """A triage run folder on the bundled model with a LoRA adapter whose B weights are not
    zero, so its fine-tuned answers differ from the base model's."""
    from peft import get_peft_model

    from ftui.models import load_model
    from ftui.runs.rundir import RunDir
    from ftui.translate import peft_config

    config = tiny_triage_config(folder)
    run = RunDir(folder / "run")
    run.write_config(config)
    base = load_model(config.model, "cpu").model
    model = get_peft_model(base, peft_config(config.method, base.config))
    torch.manual_seed(0)
    for name, parameter in model.named_parameters():
        if "lora_B" in name:
            torch.nn.init.normal_(parameter, std=0.002)
    model.save_pretrained(run.adapter)
    return run


# ---------------------------------------------------------------- a run folder on the CLI


@pytest.mark.slow
def test_eval_and_cancel_take_a_run_folder(tmp_path, tiny_model_dir):
    from ftui.runs.jobs import Jobs
    from ftui.runs.runner import wait_for
    from ftui.workspace import Workspace

    workspace = Workspace.open(tmp_path / "workspace")
    run = Jobs(workspace).submit(tiny_triage_config(tmp_path, tiny_model_dir), cwd=REPO_ROOT)
    assert wait_for(run, timeout=300)["state"] == "completed", run.log_path.read_text()[-2000:]

    def ftui(*args: str, cwd=REPO_ROOT) -> subprocess.CompletedProcess:
        command = [sys.executable, "-m", "ftui", *args]
        return subprocess.run(command, capture_output=True, text=True, timeout=300, cwd=cwd)

    scored = ftui("eval", str(run.path) + "/", "--limit", "2", "--json")  # no --workspace
    assert scored.returncode == 0, scored.stderr[-2000:]
    assert json.loads(scored.stdout)["run"] == run.run_id
    relative = ftui("cancel", f"runs/{run.run_id}", cwd=workspace.root)
    assert relative.returncode == 2 and "already completed" in relative.stderr
    elsewhere = ftui("eval", str(run.path), "--workspace", str(tmp_path / "other"))
    assert elsewhere.returncode == 2 and "belongs to the workspace" in elsewhere.stderr
    not_a_run = ftui("cancel", str(tmp_path))
    assert not_a_run.returncode == 2 and "is not a run folder" in not_a_run.stderr
    assert ftui("cancel", run.run_id, "--workspace", str(workspace.root)).returncode == 2
