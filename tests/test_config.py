"""The config tree: strict YAML loading, round trips, help text reuse."""

from __future__ import annotations

import pytest

from ftui.config import (
    ConfigError,
    DataConfig,
    FtuiConfig,
    config_from_dict,
    field_choices,
    field_help,
    load_config,
    write_config,
)


def test_defaults_use_the_bundled_model_and_safe_settings():
    config = FtuiConfig()
    assert config.model.name_or_path == "default"
    assert config.model.trust_remote_code is False
    assert config.data.format == "auto"


def test_round_trip_through_yaml(tmp_path):
    config = config_from_dict({"name": "x", "train": {"learning_rate": 1e-4, "batch_size": 4}})
    path = tmp_path / "c.yaml"
    write_config(config, path)
    assert load_config(path) == config


@pytest.mark.parametrize(
    ("data", "named"),
    [
        ({"trian": {}}, "trian"),
        ({"train": {"learning_rat": 1e-4}}, "train.learning_rat"),
        ({"data": {"format": "excel"}}, "data.format"),
        ({"train": {"batch_size": "eight"}}, "train.batch_size"),
        ({"model": {"trust_remote_code": "yes"}}, "model.trust_remote_code"),
        ({"data": {"validation_fraction": 1.5}}, "data.validation_fraction"),
        ({"data": {"columns": {"output": 3}}}, "data.columns"),
        ({"model": "gpt2"}, "model"),
    ],
)
def test_invalid_values_name_the_key(data, named):
    with pytest.raises(ConfigError, match=named.replace(".", r"\.")):
        config_from_dict(data)


def test_load_config_names_the_file(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("train:\n  epochz: 2\n")
    with pytest.raises(ConfigError) as error:
        load_config(path)
    assert "bad.yaml" in str(error.value) and "train.epochz" in str(error.value)


def test_scientific_notation_string_is_a_number():
    assert config_from_dict({"train": {"learning_rate": "2e-4"}}).train.learning_rate == 2e-4


def test_help_and_choices_come_from_the_fields():
    assert "truncated" in field_help(DataConfig, "max_length")
    assert field_choices(DataConfig, "format")[0] == "auto"
    assert "preference" in field_choices(DataConfig, "format")


def test_early_stopping_needs_checkpoints_on_eval_steps():
    from ftui.config import ConfigError, FtuiConfig, TrainConfig

    with pytest.raises(ConfigError, match="multiple of train.eval_every"):
        FtuiConfig(train=TrainConfig(early_stopping_patience=2, eval_every=20, save_every=50))
    FtuiConfig(train=TrainConfig(early_stopping_patience=2, eval_every=25, save_every=50))
