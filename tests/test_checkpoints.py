"""The shipped checkpoints load on a fresh clone, and (with real data) score what eval.json says."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

from conftest import real_data_root
from fashion_core.data import load_split
from fashion_core.runs import CHECKPOINT_DIR, list_runs, load_model
from fashion_core.gan_quality import GOALS as GAN_GOALS
from fashion_core.inference import evaluate

sys.path.insert(0, str(CHECKPOINT_DIR.parent / "scripts"))  # the scripts that write the README's tables

SHIPPED = [r for r in list_runs(CHECKPOINT_DIR) if r.eval]
LOADABLE = [r for r in SHIPPED if r.has_weights]


def test_checkpoints_folder_is_small_and_holds_no_dataset():
    files = [p for p in CHECKPOINT_DIR.rglob("*") if p.is_file()]
    assert sum(p.stat().st_size for p in files) <= 60 * 2**20
    assert not any("ubyte" in p.name for p in files)


@pytest.mark.parametrize("run", LOADABLE, ids=lambda r: r.name)
def test_shipped_run_loads_from_its_config_alone(run):
    model = load_model(run)
    ev = run.eval
    assert len(ev["predictions"]) == 10_000 and len(ev["confusion_matrix"]) == 10
    assert sum(p.numel() for p in model.parameters()) == ev["params"]


def test_only_runs_too_large_to_ship_come_without_weights_and_they_say_so_when_loaded():
    for run in SHIPPED:
        if not run.has_weights:
            assert run.eval["params"] * 2 > 20 * 2**20  # fp16 weights over a third of the folder's budget
            assert len(run.eval["predictions"]) == 10_000  # Compare still has everything it shows
            with pytest.raises(ValueError, match="no weights here .*too large"):
                load_model(run)


# an MLP, two report-003 models, the flagships (flagship_wide_long: the one over 95%) and the default
# for photos: each a few seconds on a CPU
HONESTY = [r for r in SHIPPED if r.name in ("r002_mlp_1hidden", "r003_simple_model_1", "r003_inception", "flagship",
                                            "flagship_long", "flagship_wide_long", "photo_tuned", "photo_tuned_long", "r001_cnn5",
                                            "r004_vgg_like")]
FAST = 2_000_000  # parameters: a model this size measures the 10k test images in seconds on a CPU


@pytest.mark.skipif(real_data_root() is None, reason="FASHION_MNIST_ROOT does not hold the real data")
@pytest.mark.parametrize("run", HONESTY, ids=lambda r: r.name)
def test_shipped_accuracy_is_what_eval_json_says(run):
    acc, _ = evaluate(load_model(run), load_split(False, real_data_root()), tta_flip=run.config.tta_flip)
    assert abs(acc - run.eval["test_accuracy"]) <= 0.05


def test_the_honesty_check_covers_every_report_that_ships_a_fast_model_and_the_default_for_photos():
    from fashion_core.models import model_info
    from fashion_core.photos.selection import default_run

    def reports(runs):
        return {model_info(r.config.model).report for r in runs if r.kind == "train" and r.eval["params"] <= FAST}

    assert reports(LOADABLE) <= reports(HONESTY)  # a newly shipped report model needs its re-measurement
    assert default_run().name in {r.name for r in HONESTY}


def test_readme_results_table_is_the_one_the_script_writes_from_the_shipped_runs():
    from readme_block import read_block

    block = read_block("results-table")
    assert block == _script("results_table").table(), "README table is stale: run python scripts/results_table.py"
    assert all(f"| {r.name} |" in block for r in SHIPPED)


def test_predict_defaults_to_the_shipped_photo_run_whose_threshold_did_best_on_photos_it_never_learned_from():
    from fashion_core.calibration import load_calibration
    from fashion_core.photos.selection import default_run, photo_score, tuned_on_photos
    from fashion_core.runs import read_json

    tuned = [r for r in LOADABLE if tuned_on_photos(r)]
    assert tuned
    for run in tuned:
        cal = read_json(run.path / "calibration.json")
        check = cal["photo_check"]
        # picked on the holdout slice of the training photos: 15% of each of their ten folders
        assert 0 <= check["score"] <= 1 and check["photos"] >= 400 and check["no_class"] >= 50
        assert cal["threshold_source"].startswith("picked on the holdout slice of ../shared/data/clothing-photos-train")
        assert load_calibration(run).threshold == cal["threshold"]
    assert default_run().name == max(tuned, key=photo_score).name


@pytest.mark.skipif(real_data_root() is None, reason="FASHION_MNIST_ROOT does not hold the real data")
def test_no_shipped_run_learned_from_or_chose_anything_on_a_dev_photo():
    from fashion_core.photos.folders import collect, fingerprint, fingerprints

    dev = {fingerprint(p) for _, p in collect(Path(real_data_root()) / "clothing-photos-dev")}
    assert len(dev) == 341
    folders = {m.config.photo_dir for r in SHIPPED if r.kind != "gan" for m in r.members()} - {""}
    assert folders == {"../shared/data/clothing-photos-train"}
    for folder in folders:
        assert not fingerprints(folder, "all") & dev


def _script(name: str):
    import importlib.util

    spec = importlib.util.spec_from_file_location(name, CHECKPOINT_DIR.parent / "scripts" / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_the_shipped_generator_is_small_loads_and_carries_its_measured_quality():
    from fashion_core import gan
    from fashion_core.runs import Run, read_json

    run = Run(CHECKPOINT_DIR / "gans" / "cgan")
    assert (run.path / "best.pt").stat().st_size <= 5 * 2**20 and not (run.path / "last.pt").exists()
    images = gan.generate(gan.load_generator(run), gan.per_class(2))
    assert images.shape == (20, 28, 28) and images.float().std() > 10  # garments, not a flat grey
    q = read_json(run.path / "quality.json")  # measured on the full test set, by the shipped flagship
    assert q["images"] == 10_000 and q["classifier"] == "flagship" and set(q["goals_met"]) == set(GAN_GOALS)
    assert q["goals_met"] == {k: (q[k] <= v if k == "fd_over_floor" else q[k] >= v) for k, v in GAN_GOALS.items()}


def test_readme_gan_blocks_are_the_ones_the_script_writes():
    from readme_block import read_block

    study = _script("synthetic_study")
    assert read_block("gan-quality") == study.quality_block()
    assert read_block("synthetic-study") == study.table(study.read_json(study.RESULTS, {}) or {})
    results = study.read_json(study.RESULTS, {})
    assert {r["arm"] for r in results.values()} == set(study.ARMS)  # every arm...
    assert all(sum(r["arm"] == arm for r in results.values()) >= 2 for arm in study.ARMS)  # ...over 2+ seeds


def test_readme_sweep_tables_are_the_ones_the_script_writes_from_the_shipped_studies():
    from fashion_core.sweeps import SWEEP_PRESETS
    from readme_block import read_block

    tables = _script("sweep_table")
    assert {p.stem for p in tables.SHIPPED.glob("*.db")} <= set(SWEEP_PRESETS)
    assert read_block("sweep-tables") == tables.tables()
