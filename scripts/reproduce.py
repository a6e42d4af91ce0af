"""Train the reports' models (and our flagship) with each report's recipe into checkpoints/.

    python scripts/reproduce.py [NAME ...]     # default: every entry of PLAN, skipping finished ones

Each run selects its best epoch on the validation split; test accuracy is measured once at the
end (eval.json). Shipped weights are stored in fp16 and re-evaluated, so eval.json describes
exactly the file that ships.
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

import torch

from fashion_core.config import recipe
from fashion_core.runs import CHECKPOINT_DIR, Run, load_checkpoint, save_checkpoint
from fashion_core.train import train, write_eval

# run name -> (recipe, overrides). Epoch caps keep CPU training to minutes; the note records them.
PLAN: dict[str, tuple[str, dict]] = {
    "r002_mlp_baseline": ("report002", dict(model="mlp_baseline", epochs=60)),
    "r002_mlp_1hidden": ("report002", dict(model="mlp_1hidden", epochs=40)),
    "r002_mlp_3hidden_dropout": ("report002", dict(model="mlp_3hidden_dropout", epochs=40)),
    "flagship": ("flagship", dict(model="flagship", epochs=24, tta_flip=True, val_split="stratified",
                                  val_count=4000)),
    "r003_simple_model_1": ("report003", dict(model="simple_model_1", epochs=6)),
    "r002_cnn2_mlp": ("report002", dict(model="cnn2_mlp", epochs=15, val_fraction=0.1)),
    "r001_cnn5": ("report001", dict(model="cnn5", epochs=8)),
    "r004_vgg_like": ("report004", dict(model="vgg_like", epochs=6, batch_size=64)),
    "r002_cnn1_mlp": ("report002", dict(model="cnn1_mlp", epochs=15)),
}


def compact(run: Run) -> None:
    """Ship fp16 weights only (no optimiser state) and re-measure on the test set."""
    ck = load_checkpoint(run.path / "best.pt")
    half = {k: v.half() if v.is_floating_point() else v for k, v in ck["model"].items()}
    save_checkpoint(run.path / "best.pt", {"model": half, "ema": None, "epoch": ck["epoch"]})
    (run.path / "last.pt").unlink(missing_ok=True)
    write_eval(run, device=torch.device("cpu"))


def main(names: list[str]) -> None:
    for name in names or list(PLAN):
        run = Run(CHECKPOINT_DIR / name)
        if run.eval and not (run.path / "last.pt").exists():
            continue
        rec, overrides = PLAN[name]
        cfg = recipe(rec, note=f"reproduction of report {rec[-3:]}" if rec != "flagship" else
                     "flagship recipe: SGD-nesterov one-cycle, label smoothing 0.1, flip+crop+erase", **overrides)
        t = time.time()
        train(cfg, run.path)
        before = run.eval["test_accuracy"]
        compact(run)
        print(f"{name}: test {before:.2f}% (fp32) -> {run.eval['test_accuracy']:.2f}% (fp16 shipped), "
              f"{time.time() - t:.0f}s", flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
