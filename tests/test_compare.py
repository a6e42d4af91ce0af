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
        per = [{"precision": acc, "recall": acc, "f1": acc}] * 10
        (run.path / "eval.json").write_text(json.dumps({"test_accuracy": acc, "confusion_matrix": cm,
                                                        "per_class": per}))
        runs.append(run)
    table = compare.per_class(runs, ["flagship (mine)", "flagship"])
    acc = table[table.metric == "accuracy"].groupby("run").value.mean()
    assert acc.to_dict() == {"flagship": 90.0, "flagship (mine)": 80.0}  # two bars per class, not one merged
