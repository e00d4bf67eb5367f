"""Recommend a fine-tuning method from four factors, with the reason in words.

The factors are the ones practitioners weigh: available resources (GPU memory, or CPU only),
dataset size, task specificity and the performance needed. The rules are rules of thumb
from the field, kept simple enough to explain in one sentence each:

- almost no data, or a baseline is enough with little data -> few-shot prompting, no training;
- large data, the best result and memory for every weight's gradient and optimizer state
  (~18 bytes/parameter) -> full fine-tuning;
- the 16-bit weights do not fit comfortably (~2 bytes/parameter x 1.3) -> QLoRA 4-bit;
- tiny data on a narrow task and a small budget -> prompt tuning (billion-parameter models)
  or prefix tuning (smaller ones), which train a few thousand parameters;
- otherwise LoRA, with a higher rank the more performance and generality is asked for.

    rec = recommend(gpu_memory_gb=24, dataset_rows=2000, task_specificity="narrow",
                    performance="good", model_params=1_700_000_000)
    rec.method, rec.reason, rec.settings   # settings are dotted config keys -> values
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from ftui.methods import METHODS

Specificity = Literal["general", "domain", "narrow"]
Performance = Literal["baseline", "good", "best"]
SPECIFICITIES: tuple[str, ...] = ("general", "domain", "narrow")
PERFORMANCES: tuple[str, ...] = ("baseline", "good", "best")
SPECIFICITY_HELP = (
    "general = broad behaviour (a better assistant); domain = a field's language and facts "
    "(legal, medical, your product); narrow = one task with a fixed format (triage, extraction)."
)
PERFORMANCE_HELP = (
    "baseline = better than prompting is enough; good = solid quality; best = the highest "
    "quality you can get, whatever it costs."
)

# Rules of thumb for memory, bytes per model parameter (comfort margin included).
LORA_BYTES_PER_PARAM = 2.0 * 1.3  # bf16 frozen weights + adapters, states, activations
QLORA_BYTES_PER_PARAM = 0.6 * 1.3  # 4-bit weights + quantization constants, fp32 norms
FULL_BYTES_PER_PARAM = 18.0  # weights, gradients, two AdamW states, fp32 copies

TOO_FEW_TO_TRAIN = 10  # rows
FEW_ROWS = 50  # rows: a baseline is enough -> few-shot
TINY_DATA = 200  # rows: adapters with thousands of parameters, not millions
LARGE_DATA = 50_000  # rows: enough to pay off full fine-tuning
SMALL_BUDGET_GB = 24.0  # a consumer or entry cloud GPU
CPU_SLOW_PARAMS = 1_500_000_000  # training above this on CPU takes days
PROMPT_TUNING_PARAMS = 1_000_000_000  # prompt tuning works on billion-parameter models
LORA_RANK = {"baseline": 8, "good": 16, "best": 32}


@dataclass
class Recommendation:
    method: str
    reason: str
    settings: dict[str, Any] = field(default_factory=dict)

    def markdown(self) -> str:
        """Heading, reason and what Apply changes, for the Method tab."""
        changes = ", ".join(
            f"{_setting_label(key)} = {_setting_text(value)}"
            for key, value in self.settings.items()
        )
        why = self.reason.partition(": ")[2] or self.reason  # the heading names the method
        title = METHODS[self.method].title
        return f"### Recommended: {title}\n**Why:** {why}\n\n**Apply** sets {changes}."


def recommend(
    *,
    gpu_memory_gb: float | None,
    dataset_rows: int,
    task_specificity: Specificity,
    performance: Performance,
    model_params: int,
    data_format: str | None = None,
) -> Recommendation:
    """A method and its settings for these factors; `gpu_memory_gb=None` means CPU only.

    `data_format` (the Data tab's detected format, optional) picks the training objective:
    raw text on a domain task means continued pretraining, preference pairs mean DPO.
    """
    if task_specificity not in SPECIFICITIES:
        raise ValueError(f"task_specificity must be one of {', '.join(SPECIFICITIES)}")
    if performance not in PERFORMANCES:
        raise ValueError(f"performance must be one of {', '.join(PERFORMANCES)}")
    rows = max(0, int(dataset_rows))
    size = f"{_billions(model_params)} model"
    where = "CPU only" if gpu_memory_gb is None else f"a GPU with {gpu_memory_gb:g} GB"

    if rows < TOO_FEW_TO_TRAIN or (rows < FEW_ROWS and performance == "baseline"):
        why = (
            f"only {rows} rows: too few to train on"
            if rows < TOO_FEW_TO_TRAIN
            else f"only {rows} rows and a baseline is enough"
        )
        return Recommendation(
            "few_shot",
            f"Few-shot prompting: {why}, so put a few solved examples in the prompt and "
            "spend no training. Collect a few hundred rows to make fine-tuning pay off.",
            {"method.name": "few_shot"},
        )

    objective, objective_note = _objective(task_specificity, data_format)
    lora_gb = model_params * LORA_BYTES_PER_PARAM / 1e9
    full_gb = model_params * FULL_BYTES_PER_PARAM / 1e9
    on_gpu = gpu_memory_gb is not None

    if on_gpu and rows > LARGE_DATA and performance == "best" and full_gb <= gpu_memory_gb:
        reason = (
            f"Full fine-tuning: {rows:,} rows is enough data to move every weight, the best "
            f"result was asked for, and {where} holds the {size}'s weights, gradients and "
            f"optimizer states (~{FULL_BYTES_PER_PARAM:g} bytes per parameter, ~{full_gb:.0f} GB) "
            "with room for activations."
        )
        checkpointing = full_gb * 1.5 > gpu_memory_gb
        settings = {"method.name": "full", "train.gradient_checkpointing": checkpointing}
        return _finish(Recommendation("full", reason, settings), objective, objective_note)

    rank = _rank(performance, task_specificity)
    if on_gpu and lora_gb > gpu_memory_gb:
        qlora_gb = model_params * QLORA_BYTES_PER_PARAM / 1e9
        reason = (
            f"QLoRA 4-bit: the {size}'s 16-bit weights need ~{lora_gb:.0f} GB with LoRA, "
            f"more than {where}; in 4 bits they need ~{qlora_gb:.0f} GB. "
            f"{_rank_reason(rank, performance, task_specificity)}"
        )
        if qlora_gb > gpu_memory_gb:
            reason += " Even 4-bit is likely too big here: pick a smaller model or a bigger GPU."
        settings = {
            **_lora_settings("qlora", rank),
            "method.quant_type": "nf4",
            "method.double_quant": True,
            "train.gradient_checkpointing": True,
        }
        return _finish(Recommendation("qlora", reason, settings), objective, objective_note)

    small_budget = not on_gpu or gpu_memory_gb <= SMALL_BUDGET_GB
    if rows < TINY_DATA and task_specificity == "narrow" and performance != "best" and small_budget:
        method = "prompt" if model_params >= PROMPT_TUNING_PARAMS else "prefix"
        title = "Prompt tuning" if method == "prompt" else "Prefix tuning"
        scale = (
            "it works well on billion-parameter models"
            if method == "prompt"
            else "on a model this small it has more capacity than prompt tuning"
        )
        reason = (
            f"{title}: {rows} rows on a narrow task with a small budget ({where}) call for "
            f"training well under 1% of the parameters, which also resists over-fitting; "
            f"{scale}. "
            "Try LoRA if the result falls short."
        )
        settings = {
            "method.name": method,
            "method.num_virtual_tokens": 20,
            # peft's prefix tuning refuses gradient checkpointing; tiny adapters do not need it
            "train.gradient_checkpointing": False,
        }
        return _finish(Recommendation(method, reason, settings), objective, objective_note)

    fits = f"fit {where}" if on_gpu else "train on CPU (slowly)"
    reason = (
        f"LoRA: the default for {rows:,} rows; the {size}'s 16-bit weights "
        f"(~{lora_gb:.1f} GB with LoRA) {fits}. "
        f"{_rank_reason(rank, performance, task_specificity)}"
    )
    if performance == "best" and rows <= LARGE_DATA:
        reason += f" Full fine-tuning would need more than {LARGE_DATA:,} rows to pay off."
    elif performance == "best" and on_gpu:
        reason += f" Full fine-tuning would need ~{full_gb:.0f} GB."
    if not on_gpu and model_params > CPU_SLOW_PARAMS:
        reason += " Training a model this size on CPU takes days: use a GPU if you can."
    settings = {
        **_lora_settings("lora", rank),
        "train.gradient_checkpointing": on_gpu and lora_gb * 2 > gpu_memory_gb,
    }
    return _finish(Recommendation("lora", reason, settings), objective, objective_note)


def _rank(performance: str, specificity: str) -> int:
    """Higher rank for a higher bar, doubled for broad (general) behaviour changes."""
    rank = LORA_RANK[performance]
    return rank * 2 if specificity == "general" else rank


def _rank_reason(rank: int, performance: str, specificity: str) -> str:
    broad = ", doubled for a broad change" if specificity == "general" else ""
    return f"Rank {rank} for a '{performance}' performance need on a {specificity} task{broad}."


def _lora_settings(method: str, rank: int) -> dict[str, Any]:
    return {
        "method.name": method,
        "method.lora_r": rank,
        "method.lora_alpha": 2 * rank,
        # rsLoRA keeps the update's scale steady at high rank
        "method.use_rslora": rank >= 64,
    }


def _objective(specificity: str, data_format: str | None) -> tuple[str | None, str]:
    if data_format == "preference":
        return "dpo", "Your data holds preference pairs, so the objective is DPO."
    if specificity == "domain" and data_format == "text":
        return "domain", (
            "Raw text on a domain task: continued pretraining (objective 'domain') "
            "teaches the domain's language."
        )
    if specificity == "domain" and data_format is None:
        return None, "If your data is raw domain text, choose the objective 'domain'."
    if data_format in ("alpaca", "chat", "sharegpt", "prompt_completion"):
        return "instruction", ""
    return None, ""


def _finish(rec: Recommendation, objective: str | None, note: str) -> Recommendation:
    if objective:
        rec.settings["method.objective"] = objective
    if note:
        rec.reason = f"{rec.reason} {note}"
    return rec


def _setting_label(key: str) -> str:
    name = key.split(".")[1]
    return "method" if name == "name" else name.replace("_", " ")


def _setting_text(value: Any) -> str:
    if isinstance(value, bool):
        return "on" if value else "off"
    return str(value)


def _billions(params: int) -> str:
    if params >= 1e9:
        return f"{params / 1e9:.1f}B-parameter"
    return f"{params / 1e6:.0f}M-parameter"
