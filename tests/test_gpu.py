"""CUDA paths, run on a lent GPU machine (skipped without one): automatic device and dtype,
QLoRA through ftui's translator with every adapter weight trained, the estimator's local GPU.

Results of the last run are committed in benchmarks/results/gpu_checks.json.
"""

from __future__ import annotations

import pytest
import torch

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU"),
]

TINY = dict(
    vocab_size=512,
    hidden_size=256,
    intermediate_size=512,
    num_hidden_layers=2,
    num_attention_heads=4,
    num_key_value_heads=2,
)


def test_auto_device_is_cuda_with_bf16_where_supported():
    from ftui.models import choose_device, choose_dtype

    assert choose_device("auto") == "cuda"
    expected = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    assert choose_dtype("auto", "cuda") == expected


@pytest.mark.parametrize("method", ["qlora", "lora_8bit", "lora"])
def test_kbit_and_plain_lora_train_every_adapter_weight_on_cuda(method, tmp_path):
    from transformers import AutoModelForCausalLM, LlamaConfig, LlamaForCausalLM

    from ftui.config import FtuiConfig
    from ftui.translate import apply_method, model_load_kwargs

    LlamaForCausalLM(LlamaConfig(**TINY)).save_pretrained(tmp_path)
    config = FtuiConfig()
    config.method.name = method
    model = AutoModelForCausalLM.from_pretrained(tmp_path, **model_load_kwargs(config, "cuda"))
    if method == "lora":
        model.to("cuda")
    model = apply_method(model, config)
    trainable = {n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad}
    assert trainable
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-2)
    batch = torch.randint(0, TINY["vocab_size"], (2, 32), device="cuda")
    for _ in range(2):
        model(input_ids=batch, labels=batch).loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    unchanged = [
        n
        for n, p in model.named_parameters()
        if p.requires_grad and torch.equal(p.detach(), trainable[n])
    ]
    assert not unchanged, unchanged[:5]


def test_estimator_judges_this_gpu():
    from transformers import LlamaConfig

    from ftui.config import FtuiConfig
    from ftui.estimate.plan import estimate_run
    from ftui.params import load_architecture

    estimate = estimate_run(FtuiConfig(), LlamaConfig(**TINY), device="cuda")
    local = [name for name in estimate.fits if name.startswith("this machine")]
    assert local and estimate.fits[local[0]] is True
    assert load_architecture  # the import works without weights on the GPU machine too
