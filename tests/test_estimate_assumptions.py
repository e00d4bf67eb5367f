"""The estimate says what it assumes about the run (issue 11): the sentences follow the
config, and both `ftui estimate` and the Method tab show them."""

from __future__ import annotations

from ftui.config import config_from_dotted
from ftui.estimate.plan import estimate_run
from ftui.params import load_architecture
from ftui.ui.method_view import estimate_for_ui


def assumed(device: str = "cuda", **settings) -> list[str]:
    config = config_from_dotted(settings)
    return estimate_run(config, load_architecture("default"), device=device).assumptions


def test_the_assumptions_follow_the_config():
    plain = assumed(**{"train.batch_size": 4, "data.max_length": 512})
    assert plain[0] == "the longest batch is 4 x 512 tokens (rows padded to the longest in it)"
    assert "bf16 weights, bf16 activations" in plain
    assert "gradient checkpointing off" in plain and "optimizer adamw_torch" in plain
    assert "sdpa attention (no attention matrix kept)" in plain
    assert "LoRA adapters kept in fp32" in plain
    assert "TRL's fused LM head (logits in tiles, never the full logits)" in plain
    packed = assumed(**{"method.objective": "domain", "data.format": "text"})
    assert "(rows packed to the max length)" in packed[0]

    changed = assumed(**{
        "method.name": "qlora", "train.gradient_checkpointing": True,
        "model.attn_implementation": "eager", "train.optimizer": "sgd",
    })  # fmt: skip
    assert "gradient checkpointing on" in changed and "optimizer sgd" in changed
    assert "eager attention (keeps the full attention matrix)" in changed
    assert "4-bit base weights computing in bf16, bf16 activations" in changed
    assert any("without the fp32 upcast" in sentence for sentence in changed)
    assert not any("LoRA adapters kept in fp32" in s for s in changed)  # TRL: bf16 adapters
    upcast = assumed(**{"method.name": "qlora", "method.kbit_upcast": True})
    assert "4-bit base weights computing in bf16, fp32 activations" in upcast
    assert any("k-bit recipe: norms, embeddings and LM head upcast" in s for s in upcast)

    prefix = assumed(device="cpu", **{"method.name": "prefix", "data.max_length": 256})
    assert "plus 20 virtual tokens" in prefix[0] and "fp32 weights, fp32 activations" in prefix
    assert not any("LoRA" in sentence for sentence in prefix)


def test_the_cli_and_the_method_tab_show_them(capsys):
    from ftui.cli import main

    assert main(["estimate", "--device", "cpu", "--set", "train.gradient_checkpointing=true"]) == 0
    line = capsys.readouterr().out.splitlines()[-1]
    assert line.startswith("assumes: the longest batch is 8 x 1,024 tokens")
    assert "gradient checkpointing on" in line
    view = estimate_for_ui(
        {"model.name_or_path": "default", "method.name": "lora"},
        device="cuda", gpu_name="H100 80GB", price=3.0, dataset_rows=100,
    )  # fmt: skip
    assert "**The estimate assumes:** the longest batch is 8 x 1,024 tokens" in view["memory"]
