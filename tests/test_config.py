"""A bad config is rejected before anything starts, with the field named."""
from __future__ import annotations

from dataclasses import fields

import pytest

from fashion_core.config import (GROUPS, RECIPE_NOTES, RECIPES, ConfigError, TrainConfig, field_groups, field_help,
                                 parse_setting, recipe)


@pytest.mark.parametrize("field,value", [
    ("model", "resnet9000"), ("epochs", 0), ("batch_size", -1), ("optimizer", "lion"), ("lr", 0.0),
    ("schedule", "sawtooth"), ("loss", "hinge"), ("label_smoothing", 1.5), ("logit_norm", 2.0), ("logit_norm", -0.1),
    ("focal_gamma", -1.0),
    ("val_split", "half"), ("val_fraction", 1.0), ("init", "zeros"), ("device", "tpu"),
    ("ema_decay", 1.0), ("beta2", 1.0), ("class_weights", (1.0,) * 9), ("partial_outliers", -1),
    ("partial_outliers", 2.5), ("photo_views", 0), ("photo_views", 2.0), ("photo_target", "all"),
    # wrong types (`--set lr=fast`, a hand-edited config.json) get the same message, not a TypeError
    ("lr", "fast"), ("epochs", 2.5), ("seed", "1"), ("tta_flip", 1), ("note", 3), ("momentum", None),
    ("model_kwargs", {"no_such_keyword": 1}),
])
def test_invalid_values_name_the_field(field, value):
    with pytest.raises(ValueError, match=f"^{field}:"):
        TrainConfig(**{field: value}).validate()


def test_early_stopping_needs_validation_data():
    with pytest.raises(ValueError, match="early_stop_patience"):
        TrainConfig(val_split="none", early_stop_patience=3).validate()


def test_json_round_trip_is_lossless():
    cfg = recipe("report003", model="resnet", loss="focal")
    assert TrainConfig.from_dict(cfg.to_dict()) == cfg
    assert cfg.augment.class_aware_flip and cfg.val_count == 4000


def test_unknown_fields_and_presets_are_errors():
    with pytest.raises(ValueError, match="learning_rate: unknown config field"):
        TrainConfig.from_dict({"learning_rate": 0.1})
    with pytest.raises(ValueError, match="augment: unknown preset"):
        TrainConfig.from_dict({"augment": "heavy"})


@pytest.mark.parametrize("name", list(RECIPES))
def test_every_recipe_is_valid(name):
    recipe(name).validate()


@pytest.mark.parametrize("settings,field", [
    ({"augment": {"hflip_p": "0.5"}}, "augment.hflip_p"), ({"augment": 5}, "augment"),
    ({"augment": {"crop_pad": 2.5, "crop_p": 1.0}}, "augment.crop_pad"), ({"class_weights": 5}, "class_weights"),
    ({"class_weights": [float("inf")] + [1.0] * 9}, "class_weights"),
])
def test_badly_typed_settings_from_a_file_or_the_cli_name_the_field(settings, field):
    # what `--set augment=...` or a hand-edited config.json hands over: a clear error, not a traceback
    with pytest.raises(ValueError, match=f"^{field}"):
        TrainConfig.from_dict(settings).validate()


def test_set_reads_json_values_and_refuses_a_setting_without_a_value():
    assert parse_setting("lr=0.5") == ("lr", 0.5) and parse_setting("augment=photo") == ("augment", "photo")
    assert parse_setting('augment={"hflip_p": 0.5}') == ("augment", {"hflip_p": 0.5})
    with pytest.raises(ValueError, match="expected FIELD=VALUE"):
        parse_setting("note")  # `--set note` once set the note to "" without a word


def test_every_bad_field_is_named_at_once():
    with pytest.raises(ConfigError) as caught:
        TrainConfig(lr=-1.0, epochs=0, label_smoothing=1.5).validate()
    assert [p.split(":")[0] for p in caught.value.problems] == ["epochs", "lr", "label_smoothing"]
    assert "epochs: must be an integer 1..1000 (got 0)" in str(caught.value)


def test_every_form_field_has_a_help_text():
    helps = field_help()
    missing = [f.name for f in fields(TrainConfig) if f.name != "augment" and not helps.get(f.name)]
    assert not missing, f"fields with no help in their metadata to show on the Train form: {missing}"
    from fashion_core.augment import AugmentConfig

    missing = [f.name for f in fields(AugmentConfig) if not field_help(AugmentConfig).get(f.name)]
    assert not missing, f"augmentation fields with no help on the Train form: {missing}"


def test_every_recipe_says_what_it_is_on_the_train_form():
    assert set(RECIPE_NOTES) == set(RECIPES)
    for name, cfg in ((n, recipe(n)) for n in RECIPES):  # the line names the recipe's optimiser
        assert {"adam": "Adam", "rmsprop": "RMSprop", "nadam": "Nadam", "sgd": "SGD"}[cfg.optimizer] in RECIPE_NOTES[name]


def test_every_form_field_is_on_a_tab_of_the_train_form_in_the_tabs_order():
    groups = field_groups()
    assert list(groups) == [*GROUPS, "Augmentation"]  # no field left in "Other"
    assert sorted(n for names in groups.values() for n in names) == sorted(f.name for f in fields(TrainConfig))
    assert groups["Optimiser"][:2] == ["optimizer", "lr"] and groups["Data split"][-1] == "seed"  # field order
    from fashion_core.config import AugmentConfig, op_groups

    # the augmentation form's boxes: one per op, its probability first, then its strengths
    assert list(field_groups(AugmentConfig).values()) == [[f.name for f in group] for group in op_groups()]


def test_a_run_saved_before_photo_folders_had_slices_still_reads():
    # its config.json names the photo quarters it learned from (photo_shares), a field that is gone
    old = {**TrainConfig().to_dict(), "photo_shares": "train,calib"}
    assert TrainConfig.from_dict(old) == TrainConfig()
