"""Write the reproduction table into README.md (between the results-table markers) from checkpoints/.

    python scripts/results_table.py
"""
from __future__ import annotations

import sys
from pathlib import Path

sys.path[:0] = [str(Path(__file__).resolve().parent.parent), str(Path(__file__).resolve().parent)]

from fashion_core.runs import CHECKPOINT_DIR, list_runs, result_row  # noqa: E402
from readme_block import write_block  # noqa: E402


# Report 003 gives validation accuracies (its stratified 4,000-image split, which its recipe here
# reuses) for its architecture table and its ResNet loss comparison; only its final model has a
# test number. These sit beside our best validation accuracy on the same kind of split.
REPORTED_VAL = {("simple_model_1", "ce"): 92.15, ("simple_model_2", "ce"): 93.7, ("inception", "ce"): 94.5,
                ("resnet", "ce"): 95.0, ("inception_resnet", "ce"): 94.8, ("resnet", "weighted_ce"): 94.85,
                ("resnet", "focal"): 95.05}


def _pct(x) -> str:
    return f"{x:.2f}%" if x is not None else "–"


def table() -> str:
    rows = ["| run | model | loss | report | report's test acc. | our test acc. | Δ test | report's val acc. "
            "| our val acc. | params | epochs | train time | device |",
            "| --- | --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |"]
    for run in sorted(list_runs(CHECKPOINT_DIR), key=lambda r: r.name):
        if not run.eval:
            continue
        r = result_row(run)
        reported = r["reported_accuracy"]
        delta = f"{r['test_accuracy'] - reported:+.2f}" if reported else "–"
        # an ensemble trained nothing itself: its voting members' epochs and time
        epochs = "+".join(str(e) for e in r["member_epochs"])
        params = f"{r['params']:,}" + ("" if r["weights"] else " (no weights shipped)")
        rows.append(f"| {r['run']} | {r['model']} | {r['loss']} | {r['report'] or 'ours'} | {_pct(reported)} | "
                    f"{r['test_accuracy']:.2f}% | {delta} | {_pct(REPORTED_VAL.get((r['model'], r['loss'])))} | "
                    f"{_pct(r['best_val_acc'])} | {params} | {epochs} | {r['train_time_s'] / 60:.1f} min | "
                    f"{r['device']} |")
    return "\n".join(rows)


def main() -> None:
    write_block("results-table", table())


if __name__ == "__main__":
    main()
