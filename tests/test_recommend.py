"""The recommender over a table of situations: method, key settings, and a reason that names
the factors that drove the choice."""

from __future__ import annotations

import pytest

from ftui.config import config_from_dotted
from ftui.recommend import PERFORMANCES, SPECIFICITIES, Recommendation, recommend

M = 1_000_000
B = 1_000_000_000
BUNDLED = 134_515_008

# (gpu GB or None, rows, specificity, performance, params, data format)
#   -> (method, settings that must be there, words the reason must contain)
CASES = {
    "too few rows to train": (
        (80, 5, "narrow", "best", BUNDLED, None),
        ("few_shot", {}, ["only 5 rows", "too few"]),
    ),
    "little data, baseline is enough": (
        (24, 30, "narrow", "baseline", 8 * B, None),
        ("few_shot", {}, ["30 rows", "baseline"]),
    ),
    "tiny narrow data on CPU, small model": (
        (None, 100, "narrow", "good", BUNDLED, None),
        ("prefix", {"train.gradient_checkpointing": False}, ["100 rows", "narrow", "CPU only"]),
    ),
    "tiny narrow data on a 24 GB GPU, billion-parameter model": (
        (24, 150, "narrow", "good", 3 * B, None),
        ("prompt", {"method.num_virtual_tokens": 20}, ["150 rows", "narrow", "24 GB"]),
    ),
    "large data, best, memory to spare": (
        (80, 100_000, "general", "best", BUNDLED, "alpaca"),
        ("full", {"method.objective": "instruction"}, ["100,000 rows", "best", "80 GB"]),
    ),
    "large data, best, but 70B on one GPU": (
        (80, 100_000, "general", "best", 70 * B, None),
        (
            "qlora",
            {"method.lora_r": 64, "method.use_rslora": True, "train.gradient_checkpointing": True},
            ["16-bit weights", "80 GB", "best", "general"],
        ),
    ),
    "8B does not fit a 16 GB GPU in 16 bits": (
        (16, 5_000, "narrow", "good", 8 * B, None),
        ("qlora", {"method.quant_type": "nf4", "method.lora_r": 16}, ["16 GB", "4 bits"]),
    ),
    "70B does not fit even in 4 bits": (
        (12, 2_000, "narrow", "good", 70 * B, None),
        ("qlora", {}, ["Even 4-bit is likely too big"]),
    ),
    "best on 8B with too little data for full": (
        (24, 20_000, "general", "best", 8 * B, None),
        (
            "lora",
            {"method.lora_r": 64, "method.lora_alpha": 128, "train.gradient_checkpointing": True},
            ["20,000 rows", "more than 50,000 rows", "general"],
        ),
    ),
    "domain raw text -> continued pretraining": (
        (24, 5_000, "domain", "good", 1_700 * M, "text"),
        (
            "lora",
            {"method.objective": "domain", "method.lora_r": 16},
            ["domain", "Raw text", "continued pretraining"],
        ),
    ),
    "domain task, format not known yet": (
        (80, 5_000, "domain", "good", BUNDLED, None),
        ("lora", {}, ["objective 'domain'"]),
    ),
    "preference pairs -> DPO": (
        (80, 3_000, "narrow", "good", BUNDLED, "preference"),
        ("lora", {"method.objective": "dpo"}, ["DPO"]),
    ),
    "big model on CPU": (
        (None, 3_000, "narrow", "good", 8 * B, None),
        ("lora", {"method.lora_r": 16}, ["CPU", "use a GPU"]),
    ),
    "baseline need on plenty of data: low rank": (
        (80, 3_000, "narrow", "baseline", BUNDLED, None),
        ("lora", {"method.lora_r": 8, "method.lora_alpha": 16}, ["Rank 8", "baseline"]),
    ),
}


def run(factors) -> Recommendation:
    gpu, rows, specificity, performance, params, data_format = factors
    return recommend(
        gpu_memory_gb=gpu,
        dataset_rows=rows,
        task_specificity=specificity,
        performance=performance,
        model_params=params,
        data_format=data_format,
    )


@pytest.mark.parametrize("case", list(CASES))
def test_recommendation_table(case):
    factors, (method, settings, words) = CASES[case]
    rec = run(factors)
    assert rec.method == method, rec.reason
    assert rec.settings["method.name"] == method
    for key, value in settings.items():
        assert rec.settings[key] == value, key
    for word in words:
        assert word in rec.reason, f"{word!r} missing from: {rec.reason}"


@pytest.mark.parametrize("case", list(CASES))
def test_settings_are_valid_config_keys_and_deterministic(case):
    factors, _ = CASES[case]
    rec = run(factors)
    config = config_from_dotted(rec.settings)  # strict: unknown keys or types fail
    assert config.method.name == rec.method
    assert run(factors) == rec


def test_every_factor_combination_gives_a_reason():
    for specificity in SPECIFICITIES:
        for performance in PERFORMANCES:
            for gpu in (None, 16, 80):
                for rows in (0, 40, 500, 60_000):
                    rec = run((gpu, rows, specificity, performance, 8 * B, None))
                    assert rec.reason and rec.settings["method.name"] == rec.method


def test_unknown_factor_values_are_refused():
    with pytest.raises(ValueError, match="task_specificity"):
        run((80, 1000, "medical", "good", BUNDLED, None))
    with pytest.raises(ValueError, match="performance"):
        run((80, 1000, "narrow", "great", BUNDLED, None))


def test_an_objective_is_set_only_for_a_method_that_trains_with_it():
    few_pairs = run((80, 5, "narrow", "good", BUNDLED, "preference"))
    assert few_pairs.method == "few_shot"
    assert "method.objective" not in few_pairs.settings and "DPO" not in few_pairs.reason
    few_rows = run((80, 5, "domain", "good", BUNDLED, None))
    assert "objective 'domain'" not in few_rows.reason, "few-shot prompting trains nothing"
    assert run((80, 5, "narrow", "good", BUNDLED, "chat")).settings["method.objective"] == (
        "instruction"
    )
