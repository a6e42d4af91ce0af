"""The Compare page's tables: only real differences, the report's numbers beside the measured ones."""
from __future__ import annotations

import json

import numpy as np

from fashion_core import compare
from fashion_core.config import TrainConfig
from fashion_core.models import model_info
from fashion_core.runs import Run


def make_run(tmp_path, name: str, acc: float, drop: tuple[str, ...] = (), **cfg) -> Run:
    """A run folder with config.json (minus the `drop`ped fields, like an older app wrote) and eval.json."""
    d = TrainConfig(**cfg).to_dict()
    for field in drop:
        d.pop(field, None)
        d["augment"].pop(field, None)
    path = tmp_path / name
    path.mkdir()
    (path / "config.json").write_text(json.dumps(d))
    (path / "eval.json").write_text(json.dumps({"test_accuracy": acc, "params": 7850}))
    return Run(path)


def test_fields_missing_from_an_older_config_are_not_differences(tmp_path):
    old = make_run(tmp_path, "old", 84.0, drop=("clutter_p", "clutter", "tta_flip"), model="mlp_baseline")
    new = make_run(tmp_path, "new", 85.0, model="mlp_baseline", lr=0.01)
    diff = compare.hyperparameters([old, new], differences_only=True)
    assert list(diff.index) == ["lr"]
    assert not compare.hyperparameters([old, new]).isna().any().any()  # old runs show the defaults


def test_reported_numbers_sit_beside_the_measured_ones(tmp_path):
    run = make_run(tmp_path, "base", 85.0, model="mlp_baseline")
    table = compare.results([run])
    cols = list(table.columns)
    assert cols[cols.index("test_accuracy") + 1:][:2] == ["reported_accuracy", "accuracy_gap"]
    assert cols[cols.index("params") + 1] == "reported_params"
    reported = model_info("mlp_baseline").reported_accuracy
    assert abs(table["accuracy_gap"][0] - (85.0 - reported)) < 1e-9


def test_arch_loss_grid_groups_old_and_new_configs(tmp_path):
    runs = [make_run(tmp_path, "a", 84.0, drop=("clutter_p",), model="mlp_baseline", loss="ce"),
            make_run(tmp_path, "b", 86.0, model="mlp_1hidden", loss="ce"),
            make_run(tmp_path, "c", 85.0, model="mlp_baseline", loss="focal")]
    grid = compare.arch_loss_grid(runs)
    assert grid is not None and grid.loc["mlp_baseline", "ce"] == 84.0  # the older run is in the grid
    assert grid.loc["mlp_1hidden", "ce"] == 86.0 and grid.loc["mlp_baseline", "focal"] == 85.0


def test_per_class_bars_keep_two_runs_of_the_same_name_apart(tmp_path):
    runs = []
    for folder, acc in (("mine", 80.0), ("shipped", 90.0)):
        (tmp_path / folder).mkdir()
        run = make_run(tmp_path / folder, "flagship", acc)
        cm = (np.eye(10) * acc + (100 - acc) / 9 * (1 - np.eye(10))).tolist()
        per = [{"precision": acc + 1, "recall": acc, "f1": acc + 0.5}] * 10
        (run.path / "eval.json").write_text(json.dumps({"test_accuracy": acc, "confusion_matrix": cm,
                                                        "per_class": per}))
        runs.append(run)
    table = compare.per_class(runs, ["flagship (mine)", "flagship"])
    acc = table[table.metric == "recall"].groupby("run").value.mean()
    assert acc.to_dict() == {"flagship": 90.0, "flagship (mine)": 80.0}  # two bars per class, not one merged
    assert set(table.metric) == {"recall", "precision", "f1"}  # a class's accuracy is its recall: offered once


def test_arch_loss_grid_spans_runs_trained_for_different_epochs(tmp_path):
    runs = [make_run(tmp_path, "ce", 93.7, model="resnet", loss="ce", epochs=18),
            make_run(tmp_path, "focal", 92.0, model="resnet", loss="focal", epochs=12),
            make_run(tmp_path, "small", 91.8, model="simple_model_1", loss="ce", epochs=20),
            make_run(tmp_path, "small_again", 90.0, model="simple_model_1", loss="ce", epochs=3)]
    grid = compare.arch_loss_grid(runs)
    assert grid is not None and list(grid.columns) == ["ce", "focal"]  # the loss comparison, not a lone column
    assert grid.loc["resnet", "focal"] == 92.0 and grid.loc["simple_model_1", "ce"] == 91.8  # best run per cell
    assert grid.attrs["epochs"][("resnet", "focal")] == 12 and grid.attrs["epochs"][("simple_model_1", "ce")] == 20


def test_an_ensemble_shows_its_members_training_time_and_no_config_of_its_own(tmp_path):
    members = [make_run(tmp_path, name, acc, model="mlp_baseline") for name, acc in (("m1", 85.0), ("m2", 86.0))]
    for run, seconds in zip(members, (100.0, 250.5)):
        (run.path / "eval.json").write_text(json.dumps({"test_accuracy": 85.0, "epochs": 3, "train_time_s": seconds}))
    vote = tmp_path / "vote"
    vote.mkdir()
    (vote / "config.json").write_text(json.dumps({"kind": "ensemble", "members": ["m1", "m2"], "weights": [0.5, 0.5],
                                                  "note": "soft vote of m1, m2"}))
    (vote / "eval.json").write_text(json.dumps({"test_accuracy": 87.0, "epochs": 0, "train_time_s": 0.0}))
    vote = Run(vote)
    row = compare.results([Run(vote.path)]).iloc[0]
    assert np.isnan(row["epochs_trained"]) and row["train_time_s"] == 350.5  # not "0 epochs in 0 s"
    assert np.isnan(row["reported_accuracy"]) and row["report"] == ""  # blank, not the word None
    assert compare.hyperparameters([Run(vote.path), members[0]]).loc["lr", "vote"] == "—"
    hp = compare.hyperparameters([Run(vote.path), *members], differences_only=True)
    assert list(hp.index) == ["model", "note"]  # a field the vote does not have is no difference
    assert hp.loc["note", "vote"] == "soft vote of m1, m2"


def test_the_csv_holds_every_setting_once_whatever_the_page_shows(tmp_path):
    runs = [make_run(tmp_path, "a", 84.0, model="mlp_baseline"), make_run(tmp_path, "b", 85.0, model="mlp_baseline",
                                                                          lr=0.01)]
    table = compare.export(compare.results(runs), compare.hyperparameters(runs))
    assert list(table.index) == ["a", "b"] and table.index.name == "run"
    assert not table.columns.duplicated().any()
    assert {"test_accuracy", "lr", "momentum", "augment.hflip_p"} <= set(table.columns)  # not only the differences
    assert table.loc["b", "lr"] == "0.01"
    assert table.loc["a", "epochs"] == "10" and table.loc["a", "epochs_trained"] != table.loc["a", "epochs"]  # both kept
    text = compare.export(compare.results(runs), compare.hyperparameters(runs)).to_csv()
    assert ",-0.6," in text and ",7850," in text and "7850.0" not in text  # gap 84.0 - 84.60, params whole
    assert ",false," in text and "False" not in text  # true/false, as --set takes them


def test_settings_a_run_does_not_use_show_a_dash_and_are_no_difference(tmp_path):
    sgd = make_run(tmp_path, "sgd", 84.0, model="mlp_baseline", optimizer="sgd", momentum=0.9,
                   augment={"erase_p": 0.5, "erase_area": 0.3})
    adam = make_run(tmp_path, "adam", 85.0, model="mlp_baseline", optimizer="adam", momentum=0.5,
                    augment={"erase_p": 0.0, "erase_area": 0.1})
    shown = compare.blank_unused(compare.hyperparameters([sgd, adam]))
    assert shown.loc["momentum", "sgd"] == "0.9" and shown.loc["momentum", "adam"] == "—"  # adam has no momentum
    assert shown.loc["beta1", "sgd"] == "—" and shown.loc["beta1", "adam"] == "0.9"
    assert shown.loc["augment.erase_area", "sgd"] == "0.3" and shown.loc["augment.erase_area", "adam"] == "—"
    assert shown.loc["augment.erase_p", "adam"] == "0.0"  # the switch itself is shown
    assert shown.loc["photo_batch", "sgd"] == "—"  # no photo_dir
    diff = compare.only_differences(shown)
    assert {"optimizer", "augment.erase_p"} <= set(diff.index)
    assert not {"momentum", "augment.erase_area", "beta1"} & set(diff.index)  # differ only where unused
