"""Run the reports' experiments (fashion_core.sweeps.SWEEP_PRESETS) at a budget a 2-core CPU allows, and
keep their studies in checkpoints/sweeps/NAME.db, from which scripts/sweep_table.py writes the README's tables.

    python scripts/sweep_presets.py [NAME ...]    # all presets by default; a stopped study goes on

The trials' run folders go to runs/sweeps/NAME/ (git-ignored); only the studies ship.
"""
from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from fashion_core import sweeps  # noqa: E402
from fashion_core.runs import CHECKPOINT_DIR, runs_dir  # noqa: E402

SHIPPED = CHECKPOINT_DIR / "sweeps"
# The reduced budgets, stated beside each table: a slice of the training images and fewer trials and epochs
# than the reports used (full data and budgets fit a GPU: `sweeps.preset(NAME)` as it is).
REDUCED = {
    "report001_hyperband": dict(n_trials=12, max_epochs=9, base_changes={"train_subset": 5000}),
    "report000_optimizer_x_augmentation": dict(max_epochs=3, base_changes={"train_subset": 3000}),
    # validating 12,000 images each epoch cost more than training on a 3,000-image slice (a report000 cell:
    # 11-15 min on one thread), so the presets not yet run hold out fewer: 1,000 images (report 003's
    # stratified split) or 5% (3,000, report 004's random one)
    "report003_augmentation_probability": dict(max_epochs=6, base_changes={"train_subset": 10000, "val_count": 1000}),
    "report003_architecture_x_loss": dict(max_epochs=2, base_changes={"train_subset": 3000, "val_count": 1000}),
    "report004_alexnet_ablations": dict(n_trials=12, max_epochs=5, base_changes={"train_subset": 5000,
                                                                                 "val_fraction": 0.05}),
}


def storage(name: str) -> str:
    SHIPPED.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{SHIPPED / name}.db"


def main(names: list[str]) -> int:
    for name in names or list(REDUCED):
        url = storage(name)
        try:
            sweeps.create(name, sweeps.preset(name, **REDUCED[name]), url)
        except ValueError as exc:
            if "exists already" not in str(exc):
                raise
        ran = sweeps.work(name, url, out_dir=runs_dir() / "sweeps" / name)
        study, cfg = sweeps.load(name, url)
        print(f"{name}: ran {ran} trial(s), {sweeps.counted(study)} of {cfg.n_trials} finished", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
