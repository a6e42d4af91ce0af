"""Write the reports' experiments into README.md (between the sweep-tables markers) from the studies in
checkpoints/sweeps/ (scripts/sweep_presets.py runs them): each study's trials, and what the report
concluded next to what the study shows.

    python scripts/sweep_table.py
"""
from __future__ import annotations

import statistics
import sys
from pathlib import Path

sys.path[:0] = [str(Path(__file__).resolve().parent.parent), str(Path(__file__).resolve().parent)]

from fashion_core import sweeps  # noqa: E402
from fashion_core.runs import CHECKPOINT_DIR  # noqa: E402
from readme_block import write_block  # noqa: E402
SHIPPED = CHECKPOINT_DIR / "sweeps"

# what each report concluded from the experiment the preset reproduces (the reports' words, summarised)
REPORT_SAYS = {
    "report001_hyperband": "Hyperband picked Nadam at lr 0.001, beta1 0.9, beta2 0.99, no weight decay and dropout "
                           "0.1, and was found \"useful for balancing resources and training time\".",
    "report000_optimizer_x_augmentation": "SGD reached 87% test accuracy, RMSprop 90.85% and Adam 91.06%; with "
                                          "augmentation RMSprop 91.43% and Adam 90.88%: augmentation helped little.",
    "report003_augmentation_probability": "No augmentation overfits quickly; p 0.05 helps; p 0.3 is best; p 0.5 "
                                          "brought no further gain.",
    "report003_architecture_x_loss": "ResNet was best; on it focal loss (95.05% validation) edged cross-entropy "
                                     "(95.0%) and weighted cross-entropy (94.85%) was worse.",
    "report004_alexnet_ablations": "Kernel 5 and dropout 0.7 were best for its AlexNet, more filters helped, He "
                                   "initialisation beat Glorot, and ReLU beat PReLU and ELU.",
}


def _value(v) -> str:
    return f"{v:.3g}" if isinstance(v, float) else str(v)


def study_table(name: str) -> str:
    study, cfg = sweeps.load(name, f"sqlite:///{SHIPPED / name}.db")
    rows = [r for r in sweeps.trial_table(study) if r.state in ("complete", "pruned")]
    names = [p.name for p in cfg.space]
    subset = cfg.base.train_subset or "all"
    models = "the models in the table" if "model" in {p.name for p in cfg.space} else cfg.base.model
    lines = [f"#### `{name}`", "", f"- The report: {REPORT_SAYS.get(name, '')}",
             f"- Here: {models}, {len(rows)} of {cfg.n_trials} trials finished, up to {cfg.max_epochs} "
             f"epochs each on the first {subset} training images, {cfg.sampler} sampler, {'no' if cfg.pruner == 'none' else cfg.pruner} pruner; "
             "scored by best validation accuracy (the test set is never used to choose)."]
    best = max(rows, key=lambda r: r.value or -1, default=None)
    if best is not None:
        lines.append(f"- Best: trial {best.number}, " + ", ".join(f"{k} {_value(best.params[k])}" for k in names)
                     + f": {best.value:.2f}%.")
    for p in cfg.space:  # a categorical setting: its choices side by side
        if p.choices and len(p.choices) > 1:
            by = {}
            for r in rows:
                if r.value is not None and r.state == "complete":
                    by.setdefault(str(r.params[p.name]), []).append(r.value)
            lines.append(f"- Mean best validation accuracy by {p.name}: " + ", ".join(
                f"{k} {statistics.mean(v):.2f}% ({len(v)})" for k, v in sorted(by.items())) + ".")
    lines += ["", "| trial | " + " | ".join(names) + " | state | best val. acc. | epochs |",
              "| ---: |" + " --- |" * len(names) + " --- | ---: | ---: |"]
    for r in sorted(rows, key=lambda r: -(r.value or -1)):
        lines.append(f"| {r.number} | " + " | ".join(_value(r.params.get(k)) for k in names) + f" | {r.state} | "
                     + (f"{r.value:.2f}%" if r.value is not None else "–") + f" | {r.epochs} |")
    return "\n".join(lines)


def tables() -> str:
    found = sorted(p.stem for p in SHIPPED.glob("*.db"))
    missing = [name for name in sweeps.SWEEP_PRESETS if name not in found]
    return "\n\n".join([study_table(name) for name in found] + (
        [f"Not run here yet: {', '.join(f'`{m}`' for m in missing)} (`python scripts/sweep_presets.py NAME`)."]
        if missing else []))


def main() -> None:
    write_block("sweep-tables", tables())


if __name__ == "__main__":
    main()
