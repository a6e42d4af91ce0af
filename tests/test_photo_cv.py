"""Cross-validation over the photo quarters: which folds a run gets, and that each quarter is
judged by a threshold its own photos had no say in."""
from __future__ import annotations

import numpy as np

from fashion_core.photos.cv import OutOfFold, cross_validated_check, folds, nested_thresholds
from fashion_core.photos.folders import QUARTERS


def test_a_run_gets_one_fold_per_quarter_it_learned_from_each_leaving_that_quarter_out():
    assert folds({"calib", "train"}) == {"train": ("calib",), "calib": ("train",)}
    every = folds(set(QUARTERS))
    assert list(every) == list(QUARTERS)
    assert all(set(learn) == set(QUARTERS) - {q} and len(learn) == 3 for q, learn in every.items())
    assert folds({"train"}) == {}  # nothing to cross-validate: its threshold is picked on calib


def _scores(mapped_conf: float, no_class_conf: float, n: int = 10) -> OutOfFold:
    conf = np.array([mapped_conf] * n + [no_class_conf] * 2)
    mapped = np.array([True] * n + [False] * 2)
    return OutOfFold(conf, np.zeros(n + 2, int), mapped.copy(), mapped, ["t-shirt"] * n + ["hat"] * 2)


def test_each_quarter_is_judged_by_a_threshold_picked_on_the_other_quarters_only():
    scores = {q: _scores(0.9, 0.3) for q in QUARTERS}
    scores["train"] = _scores(0.5, 0.45)  # a quarter where the model is far less sure of everything
    t = nested_thresholds(scores)
    # picked on the three confident quarters: as high as leaves their mapped photos sure
    assert t["train"] == 0.90
    # the others' thresholds must leave train's mapped photos (a third of theirs) sure too
    assert t["calib"] == t["held-out-a"] == t["held-out-b"] == 0.50
    # train's own scores have no say in its threshold
    scores["train"] = _scores(0.2, 0.9)
    assert nested_thresholds(scores)["train"] == 0.90
    # and a quarter the others' threshold does not suit is reported as it is
    scores["train"] = _scores(0.5, 0.45)
    check = cross_validated_check(scores)
    assert check["photos"] == 48 and check["no_class"] == 8 and check["cross_fitted"]
    assert check["mapped_unsure"] == 0.25  # train's 10 mapped photos of 40, all under 0.90
    assert check["no_class_unsure"] == 1.0  # 0.45 < 0.90 and 0.30 < 0.50
