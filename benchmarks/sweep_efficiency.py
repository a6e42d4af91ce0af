"""Hyperband against no pruning on the real data: the same space, sampler, seed and number of trials.

    python benchmarks/sweep_efficiency.py [--trials 48] [--max-epochs 9] [--reduction-factor 4]
        [--sampler random] [--model mlp_1hidden]

Prints, for each, the best validation accuracy reached, the epochs trained and the wall-clock time,
and the ratios. Goal (issue: tuning and studies): Hyperband within 0.3 points of the unpruned best
while training at most 40% of its epochs. Trials are scored on validation only.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from fashion_core import sweeps  # noqa: E402
from fashion_core.config import TrainConfig  # noqa: E402
from fashion_core.data import data_root, is_available, load_split  # noqa: E402
from fashion_core.device import describe_device  # noqa: E402


def run(pruner: str, args, folder: Path) -> dict:
    base = TrainConfig(model=args.model, optimizer="adam", weight_decay=0.0, schedule="none", batch_size=128,
                       val_split="random", val_fraction=0.2, seed=0)
    space = (sweeps.Param("optimizer", choices=("adam", "sgd", "rmsprop")), sweeps.Param("lr", 1e-5, 1e-1, log=True),
             sweeps.Param("batch_size", choices=(64, 128, 256)))
    cfg = sweeps.SweepConfig(base, space, sampler=args.sampler, pruner=pruner, n_trials=args.trials,
                             max_epochs=args.max_epochs, reduction_factor=args.reduction_factor, seed=args.seed)
    url = f"sqlite:///{folder / pruner}.db"
    sweeps.create(pruner, cfg, url)
    t0 = time.perf_counter()
    sweeps.work(pruner, url, out_dir=folder / pruner)
    seconds = time.perf_counter() - t0
    study, _ = sweeps.load(pruner, url)
    rows = sweeps.trial_table(study)
    return {"best": max(r.value for r in rows if r.value is not None), "epochs": sum(r.epochs for r in rows),
            "pruned": sum(r.state == "pruned" for r in rows), "seconds": seconds}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--trials", type=int, default=48)
    ap.add_argument("--max-epochs", type=int, default=9)
    ap.add_argument("--model", default="mlp_1hidden")
    ap.add_argument("--reduction-factor", type=int, default=4, help="Hyperband's eta (the sweep's reduction_factor)")
    ap.add_argument("--sampler", default="random", choices=("random", "tpe"),
                    help="random: both arms try the very same configs, so the gap is what pruning lost")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    if not is_available():
        print(f"error: Fashion-MNIST is not under {data_root()}; set FASHION_MNIST_ROOT", file=sys.stderr)
        return 2
    load_split(True)  # read once before timing
    with tempfile.TemporaryDirectory() as tmp:
        results = {p: run(p, args, Path(tmp)) for p in ("none", "hyperband")}
    none, hb = results["none"], results["hyperband"]
    print(f"\n{args.trials} trials of {args.model}, up to {args.max_epochs} epochs each, "
          f"{args.sampler} sampler seed {args.seed}, "
          f"Hyperband keeping 1 in {args.reduction_factor} at each rung, "
          f"on {describe_device()}\n")
    print("| pruner | best val. acc. | epochs trained | trials pruned | time |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for name, r in results.items():
        print(f"| {name} | {r['best']:.2f}% | {r['epochs']} | {r['pruned']} | {r['seconds']:.0f} s |")
    gap, share = none["best"] - hb["best"], hb["epochs"] / none["epochs"]
    print(f"\nHyperband: {gap:+.2f} points below the unpruned best (goal <= 0.3), {share:.0%} of its epochs "
          f"(goal <= 40%), {hb['seconds'] / none['seconds']:.0%} of its time: "
          + ("goal met" if gap <= 0.3 and share <= 0.4 else "goal NOT met"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
