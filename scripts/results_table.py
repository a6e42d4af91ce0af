"""Write the reproduction table into README.md (between the results-table markers) from checkpoints/.

    python scripts/results_table.py
"""
from __future__ import annotations

import re
from pathlib import Path

from fashion_core.models import model_info
from fashion_core.runs import CHECKPOINT_DIR, list_runs

README = Path(__file__).resolve().parent.parent / "README.md"


def table() -> str:
    rows = ["| run | model | loss | report | report's test acc. | our test acc. | Δ | params | epochs | train time | device |",
            "| --- | --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |"]
    for run in sorted(list_runs(CHECKPOINT_DIR), key=lambda r: r.name):
        ev = run.eval
        if not ev:
            continue
        model = run.config.model
        info = model_info(model) if model != "ensemble" else None
        reported = info.reported_accuracy if info else None
        delta = f"{ev['test_accuracy'] - reported:+.2f}" if reported else "–"
        loss = "soft vote" if model == "ensemble" else run.config.loss
        rows.append(f"| {run.name} | {model} | {loss} | {info.report if info else 'ours'} | "
                    f"{f'{reported:.2f}%' if reported else '–'} | {ev['test_accuracy']:.2f}% | {delta} | "
                    f"{ev['params']:,} | {ev['epochs']} | {ev['train_time_s'] / 60:.1f} min | {ev['device']} |")
    return "\n".join(rows)


def main() -> None:
    text = README.read_text()
    block = f"<!-- results-table -->\n{table()}\n<!-- /results-table -->"
    text = re.sub(r"<!-- results-table -->.*?<!-- /results-table -->", block, text, flags=re.S)
    README.write_text(text)
    print(block)


if __name__ == "__main__":
    main()
