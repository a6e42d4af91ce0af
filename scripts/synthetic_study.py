"""Does synthetic data help a classifier? The flagship, trained at the same epochs and seeds with 0, 25%
and 50% of every batch drawn at random from the shipped generator, and 25% drawn as "difficult" images
(report 001's suggestion); test accuracy measured once per run, after choosing the epoch on validation.

    python scripts/synthetic_study.py [--epochs 4] [--seeds 0 1]   # trains what is missing, resumes a stopped run
    python scripts/synthetic_study.py --table                      # only rewrite the README's table

Runs go to runs/synthetic-study/ (git-ignored); their results to checkpoints/synthetic_study.json, from
which the README's synthetic-study block is written.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

sys.path[:0] = [str(Path(__file__).resolve().parent.parent), str(Path(__file__).resolve().parent)]

from fashion_core.config import TrainConfig  # noqa: E402
from fashion_core.gan_quality import report_lines  # noqa: E402
from fashion_core.runs import CHECKPOINT_DIR, Run, atomic_write_json, read_json, runs_dir  # noqa: E402
from fashion_core.train import train  # noqa: E402
from readme_block import write_block  # noqa: E402

RESULTS = CHECKPOINT_DIR / "synthetic_study.json"
GENERATOR = CHECKPOINT_DIR / "gans" / "cgan"
ARMS = {"none": (0.0, "random"), "random 25%": (0.25, "random"), "random 50%": (0.5, "random"),
        "difficult 25%": (0.25, "difficult")}


def config(arm: str, seed: int, epochs: int) -> TrainConfig:
    fraction, mode = ARMS[arm]
    return TrainConfig(epochs=epochs, seed=seed, synthetic_fraction=fraction, synthetic_mode=mode,
                       synthetic_from=str(GENERATOR) if fraction else "",
                       note=f"synthetic study: {arm}, seed {seed}")


def run_all(epochs: int, seeds: list[int]) -> dict:
    results = read_json(RESULTS, {}) or {}
    for arm in ARMS:
        for seed in seeds:
            key = f"{arm} / seed {seed} / {epochs} epochs"
            if key in results:
                continue
            folder = runs_dir() / "synthetic-study" / f"{arm.replace(' ', '-').replace('%', '')}-s{seed}-e{epochs}"
            run = train(config(arm, seed, epochs), folder)
            if run.status.get("state") != "done":
                raise SystemExit(f"{folder} stopped ({run.status.get('state')}); run this again to resume it")
            ev = run.eval
            results[key] = {"arm": arm, "seed": seed, "epochs": epochs, "test_accuracy": ev["test_accuracy"],
                            "best_val_acc": ev["best_val_acc"], "train_time_s": ev["train_time_s"],
                            "device": ev["device"], "generator": GENERATOR.name,
                            "generator_epochs": len(Run(GENERATOR).metrics)}
            atomic_write_json(RESULTS, results)
            print(f"{key}: {ev['test_accuracy']:.2f}%", flush=True)
    return results


def table(results: dict) -> str:
    """Per arm: test accuracy mean ± spread (half the range) over the seeds, and each seed's number."""
    if not results:
        return "Not run yet: `python scripts/synthetic_study.py`."
    lines = ["| synthetic share of each batch | seeds | test accuracy, mean ± half range | each seed | "
             "training time (mean) |", "| --- | ---: | ---: | --- | ---: |"]
    any_row = next(iter(results.values()))
    for arm in ARMS:
        rows = sorted((r for r in results.values() if r["arm"] == arm), key=lambda r: r["seed"])
        if not rows:
            continue
        acc = [r["test_accuracy"] for r in rows]
        spread = (max(acc) - min(acc)) / 2
        lines.append(f"| {arm} | {len(rows)} | {statistics.mean(acc):.2f}% ± {spread:.2f} | "
                     + ", ".join(f"{a:.2f}%" for a in acc)
                     + f" | {statistics.mean(r['train_time_s'] for r in rows) / 60:.1f} min |")
    trained = {r.get("generator_epochs") for r in results.values()} - {None}
    state = f" as it stood after {'/'.join(map(str, sorted(trained)))} epochs" if trained else ""
    lines.append(f"\nThe flagship, {any_row['epochs']} epochs, on {any_row['device']}; generator "
                 f"`checkpoints/gans/{any_row['generator']}`{state}; test accuracy on the official 10,000 test images, "
                 "each run's epoch chosen on its validation split. Written by `python scripts/synthetic_study.py`.")
    return "\n".join(lines)


def quality_block() -> str:
    """The shipped generator's quality.json (python -m fashion_core gan quality checkpoints/gans/cgan), as text."""
    q = read_json(GENERATOR / "quality.json")
    if not isinstance(q, dict):
        return "Not measured yet: `python -m fashion_core gan quality checkpoints/gans/cgan`."
    return "\n".join(f"- {line}" for line in report_lines(q))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=4)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    ap.add_argument("--table", action="store_true", help="only rewrite the README's table from the results")
    args = ap.parse_args()
    results = read_json(RESULTS, {}) if args.table else run_all(args.epochs, args.seeds)
    write_block("gan-quality", quality_block())
    write_block("synthetic-study", table(results or {}))
    print(json.dumps({"results": str(RESULTS), "runs": len(results or {})}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
