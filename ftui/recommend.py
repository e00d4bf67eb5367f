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

The decision order is this module's; what a method needs (bytes per parameter, the smallest
model it suits, the objectives it trains with) is its entry in `ftui.methods.METHODS`.

    rec = recommend(gpu_memory_gb=24, dataset_rows=2000, task_specificity="narrow",
                    performance="good", model_params=1_700_000_000)
    rec.method, rec.reason, rec.settings   # settings are dotted config keys -> values
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from ftui.methods import METHODS, objective_for_format

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

# The decision thresholds; what each method needs per parameter is in its catalog entry
# (MethodInfo.bytes_per_param, min_model_params).
TOO_FEW_TO_TRAIN = 10  # rows
FEW_ROWS = 50  # rows: a baseline is enough -> few-shot
TINY_DATA = 200  # rows: adapters with thousands of parameters, not millions
LARGE_DATA = 50_000  # rows: enough to pay off full fine-tuning
SMALL_BUDGET_GB = 24.0  # a consumer or entry cloud GPU
CPU_SLOW_PARAMS = 1_500_000_000  # training above this on CPU takes days
LORA_RANK = {"baseline": 8, "good": 16, "best": 32}
OBJECTIVE_NOTES = {
    "dpo": "Your data holds preference pairs, so the objective is DPO.",
    "kto": "Your data holds answers labelled good or bad, so the objective is KTO (it needs "
    "a batch size of 2 or more).",
    "domain": "Raw text on a domain task: continued pretraining (objective 'domain') "
    "teaches the domain's language.",
}
DOMAIN_HINT = "If your data is raw domain text, choose the objective 'domain'."


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


@dataclass(frozen=True)
class Situation:
    """The four factors, as the rules read them."""

    gpu_memory_gb: float | None  # None: CPU only
    rows: int
    specificity: str
    performance: str
    model_params: int

    @property
    def on_gpu(self) -> bool:
        return self.gpu_memory_gb is not None

    @property
    def where(self) -> str:
        return "CPU only" if self.gpu_memory_gb is None else f"a GPU with {self.gpu_memory_gb:g} GB"

    @property
    def size(self) -> str:
        return f"{_billions(self.model_params)} model"

    @property
    def rank(self) -> int:
        """Higher rank for a higher bar, doubled for broad (general) behaviour changes."""
        rank = LORA_RANK[self.performance]
        return rank * 2 if self.specificity == "general" else rank

    def rank_reason(self) -> str:
        broad = ", doubled for a broad change" if self.specificity == "general" else ""
        return (
            f"Rank {self.rank} for a '{self.performance}' performance need on a "
            f"{self.specificity} task{broad}."
        )

    def memory_gb(self, method: str) -> float:
        """The method's rule-of-thumb training memory for this model."""
        return self.model_params * METHODS[method].bytes_per_param / 1e9


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
    The rules are tried in order; the first that applies decides.
    """
    if task_specificity not in SPECIFICITIES:
        raise ValueError(f"task_specificity must be one of {', '.join(SPECIFICITIES)}")
    if performance not in PERFORMANCES:
        raise ValueError(f"performance must be one of {', '.join(PERFORMANCES)}")
    situation = Situation(
        gpu_memory_gb, max(0, int(dataset_rows)), task_specificity, performance, model_params
    )
    rec = (
        _few_shot(situation)
        or _full(situation)
        or _qlora(situation)
        or _tiny_adapter(situation)
        or _lora(situation)
    )
    return _with_objective(rec, task_specificity, data_format)


def _few_shot(s: Situation) -> Recommendation | None:
    if s.rows < TOO_FEW_TO_TRAIN:
        why = f"only {s.rows} rows: too few to train on"
    elif s.rows < FEW_ROWS and s.performance == "baseline":
        why = f"only {s.rows} rows and a baseline is enough"
    else:
        return None
    return Recommendation(
        "few_shot",
        f"Few-shot prompting: {why}, so put a few solved examples in the prompt and "
        "spend no training. Collect a few hundred rows to make fine-tuning pay off.",
        {"method.name": "few_shot"},
    )


def _full(s: Situation) -> Recommendation | None:
    full_gb = s.memory_gb("full")
    enough_data = s.rows > LARGE_DATA and s.performance == "best"
    if not (enough_data and s.on_gpu and full_gb <= s.gpu_memory_gb):
        return None
    reason = (
        f"Full fine-tuning: {s.rows:,} rows is enough data to move every weight, the best "
        f"result was asked for, and {s.where} holds the {s.size}'s weights, gradients and "
        f"optimizer states (~{METHODS['full'].bytes_per_param:g} bytes per parameter, "
        f"~{full_gb:.0f} GB) with room for activations."
    )
    checkpointing = full_gb * 1.5 > s.gpu_memory_gb
    return Recommendation(
        "full", reason, {"method.name": "full", "train.gradient_checkpointing": checkpointing}
    )


def _qlora(s: Situation) -> Recommendation | None:
    lora_gb, qlora_gb = s.memory_gb("lora"), s.memory_gb("qlora")
    if not s.on_gpu or lora_gb <= s.gpu_memory_gb:
        return None
    reason = (
        f"QLoRA 4-bit: the {s.size}'s 16-bit weights need ~{lora_gb:.0f} GB with LoRA, "
        f"more than {s.where}; in 4 bits they need ~{qlora_gb:.0f} GB. {s.rank_reason()}"
    )
    if qlora_gb > s.gpu_memory_gb:
        reason += " Even 4-bit is likely too big here: pick a smaller model or a bigger GPU."
    settings = {
        **_lora_settings("qlora", s.rank),
        "method.quant_type": "nf4",
        "method.double_quant": True,
        "train.gradient_checkpointing": True,
    }
    return Recommendation("qlora", reason, settings)


def _tiny_adapter(s: Situation) -> Recommendation | None:
    """Prompt tuning on models big enough for it, else prefix tuning."""
    small_budget = not s.on_gpu or s.gpu_memory_gb <= SMALL_BUDGET_GB
    tiny_narrow = s.rows < TINY_DATA and s.specificity == "narrow"
    if not (tiny_narrow and s.performance != "best" and small_budget):
        return None
    method = "prompt" if s.model_params >= METHODS["prompt"].min_model_params else "prefix"
    scale = (
        "it works well on billion-parameter models"
        if method == "prompt"
        else "on a model this small it has more capacity than prompt tuning"
    )
    reason = (
        f"{METHODS[method].title}: {s.rows} rows on a narrow task with a small budget "
        f"({s.where}) call for training well under 1% of the parameters, which also resists "
        f"over-fitting; {scale}. Try LoRA if the result falls short."
    )
    settings = {
        "method.name": method,
        "method.num_virtual_tokens": 20,
        # peft's prefix tuning refuses gradient checkpointing; tiny adapters do not need it
        "train.gradient_checkpointing": False,
    }
    return Recommendation(method, reason, settings)


def _lora(s: Situation) -> Recommendation:
    lora_gb = s.memory_gb("lora")
    fits = f"fit {s.where}" if s.on_gpu else "train on CPU (slowly)"
    reason = (
        f"LoRA: the default for {s.rows:,} rows; the {s.size}'s 16-bit weights "
        f"(~{lora_gb:.1f} GB with LoRA) {fits}. {s.rank_reason()}"
    )
    if s.performance == "best" and s.rows <= LARGE_DATA:
        reason += f" Full fine-tuning would need more than {LARGE_DATA:,} rows to pay off."
    elif s.performance == "best" and s.on_gpu:
        reason += f" Full fine-tuning would need ~{s.memory_gb('full'):.0f} GB."
    if not s.on_gpu and s.model_params > CPU_SLOW_PARAMS:
        reason += " Training a model this size on CPU takes days: use a GPU if you can."
    settings = {
        **_lora_settings("lora", s.rank),
        "train.gradient_checkpointing": s.on_gpu and lora_gb * 2 > s.gpu_memory_gb,
    }
    return Recommendation("lora", reason, settings)


def _lora_settings(method: str, rank: int) -> dict[str, Any]:
    return {
        "method.name": method,
        "method.lora_r": rank,
        "method.lora_alpha": 2 * rank,
        # rsLoRA keeps the update's scale steady at high rank
        "method.use_rslora": rank >= 64,
    }


def _with_objective(
    rec: Recommendation, specificity: str, data_format: str | None
) -> Recommendation:
    """The objective the data calls for, when the method trains with it, and why."""
    allowed = METHODS[rec.method].objectives
    objective = objective_for_format(data_format)
    if objective == "domain" and specificity != "domain":
        objective = None  # raw text for a task: the user says what it is for
    note = ""
    if objective in allowed:
        rec.settings["method.objective"] = objective
        note = OBJECTIVE_NOTES.get(objective, "")
    elif data_format is None and specificity == "domain" and "domain" in allowed:
        note = DOMAIN_HINT
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
