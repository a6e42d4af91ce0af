"""Accuracy on real clothing photos that no model learned from: our pipeline and models next to the naive baseline.

    python benchmarks/photo_accuracy.py PHOTO_DIR [--model RUN] [--also RUN ...] [--sheets DIR] [--segment-side N]

PHOTO_DIR holds one folder per garment type (../shared/data/README.md), for measuring only: clothing-photos-dev.
Systems, measured in the same run on the same photos:
    naive + MODEL   greyscale, invert, squash to 28x28 (pipeline.naive), then the model
    ours + MODEL    the photo pipeline (pipeline.prepare), then the model
    ours + RUN      each --also run (another photo run, or the photo default of an earlier checkout)
MODEL is the Predict page's default (photos.selection.default_run) unless --model names another.

The headline table holds only systems whose runs learned nothing from PHOTO_DIR and chose nothing on it: a run
whose photo folder (any member's photo_dir, train and holdout slices) holds any of these photos, recognised by
content under any name, or whose photo folder is not here to check, is listed apart with the reason and never in
the headline. Prints top-1 accuracy on the garments with a Fashion-MNIST class, the unsure rates, 95% Wilson
intervals, per-folder accuracy and the confusion between the seven folders. --sheets DIR writes, for the default
system, a contact sheet per folder of the photos it got wrong, after each step of the pipeline.
"""
from __future__ import annotations

import argparse
import functools
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from scipy.stats import binomtest  # noqa: E402

from fashion_core.photos.folders import MAPPING, UNMAPPED, collect, fingerprint, fingerprints  # noqa: E402
from fashion_core.photos.pipeline import (GRABCUT_ITERATIONS, SEGMENT_SIDE, WORK_SIDE, ImageError,  # noqa: E402
                                         load_image, naive, prepare)
from fashion_core.photos.selection import default_run  # noqa: E402
from fashion_core.predictor import Predictor  # noqa: E402
from fashion_core.runs import Run  # noqa: E402

GOALS = {"acc": 0.88, "unsure": 0.10, "no_class_unsure": 0.85}  # the goals on the dev photos
# the folder each Fashion-MNIST class answers for (Bag answers for none of them)
FOLDER_OF = {c: folder for folder, classes in MAPPING.items() for c in classes}


def prepare_all(photos: list[tuple[str, Path]], keep_steps: bool = False, other_side: int | None = None,
                other_iterations: int | None = None):
    """(N, 28, 28) ours, (N, 28, 28) naive, which photos could be read, (with keep_steps) each photo's
    pipeline steps, and (with other_side) ours segmented on a copy of that size, with other_iterations of
    GrabCut (default: ours)."""
    ours, base, ok, steps, other = [], [], [], [], []
    blank = np.zeros((28, 28), np.uint8)
    for _, path in photos:
        try:
            img = load_image(path)
        except ImageError:
            ours.append(blank), base.append(blank), other.append(blank), ok.append(False), steps.append(None)
            continue
        prepared = prepare(img)
        ours.append(prepared.image28), base.append(naive(img)), ok.append(True)
        steps.append(prepared.steps if keep_steps else None)
        other.append(prepare(img, other_side, other_iterations).image28 if other_side else blank)
    return np.stack(ours), np.stack(base), np.array(ok), steps, np.stack(other)


@functools.cache
def _folder_hashes(folder: Path) -> frozenset[str]:
    """Every photo's content hash in a photo folder, read once however many runs learned from it."""
    return frozenset(fingerprints(folder, "all"))


def learned_here(run: Run, here: set[str]) -> str:
    """Why `run` may not be measured on photos with these content hashes ("" when it may): it learned from
    some of them, or chose its threshold on them, or its photo folder cannot be checked."""
    for member in run.members():
        folder = member.config.photo_dir
        if not folder:
            continue
        if not Path(folder).is_dir():
            return f"its photo folder {folder} is not here, so what it learned from cannot be checked"
        seen = len(_folder_hashes(Path(folder).resolve()) & here)
        if seen:
            return f"{member.name} learned from or chose its threshold on {seen} of these photos (in {folder})"
    return ""


def wilson(k: int, n: int) -> tuple[float, float]:
    """95% Wilson score interval of a rate k/n: how far a rate measured on few photos can be trusted."""
    if n == 0:
        return 0.0, 1.0
    ci = binomtest(k, n).proportion_ci(0.95, method="wilson")
    return float(ci.low), float(ci.high)


def rate(hit: np.ndarray, among: np.ndarray) -> tuple[int, int]:
    return int((hit & among).sum()), int(among.sum())


def cell(k: int, n: int) -> str:
    lo, hi = wilson(k, n)
    return f"{k / max(n, 1):.1%} ({k}/{n}; {lo:.1%}-{hi:.1%})"


def score(folders: np.ndarray, ok: np.ndarray, predictor: Predictor, images: np.ndarray) -> dict:
    answers = predictor.answers(images)
    top = np.array([a["index"] for a in answers])
    unsure = np.array([a["unsure"] for a in answers])
    mapped = np.isin(folders, list(MAPPING)) & ok
    right = np.array([t in MAPPING.get(f, ()) for t, f in zip(top, folders)])
    return {"top": top, "unsure": unsure, "right": right, "mapped": mapped,
            "no_class": np.isin(folders, list(UNMAPPED)) & ok}


def print_headline(systems: dict[str, dict]) -> None:
    print("\n### Headline: photos no model here learned from or chose anything on\n")
    print("| system | top-1 on garments with a class | unsure on them | unsure on hats, shorts, skirts |")
    print("| --- | --- | --- | --- |")
    for name, s in systems.items():
        print(f"| {name} | {cell(*rate(s['right'], s['mapped']))} | {cell(*rate(s['unsure'], s['mapped']))} | "
              f"{cell(*rate(s['unsure'], s['no_class']))} |")
    print(f"\nGoals: top-1 >= {GOALS['acc']:.0%}, unsure on garments with a class <= {GOALS['unsure']:.0%}, "
          f"unsure on hats, shorts and skirts >= {GOALS['no_class_unsure']:.0%}. Intervals: 95% Wilson.")


def print_folders(systems: dict[str, dict], folders: np.ndarray) -> None:
    names = list(systems)
    print("\n### Per folder: top-1 (garments with a class) and unsure\n")
    print("| folder | n | " + " | ".join(f"{s}: top-1 | {s}: unsure" for s in names) + " |")
    print("| --- | ---: |" + " ---: | ---: |" * len(names))
    for folder in dict.fromkeys(folders):
        sel = folders == folder
        cells = []
        for s in systems.values():
            among = sel & (s["mapped"] | s["no_class"])
            cells.append(f"{(s['right'] & among).sum() / max(among.sum(), 1):.1%}" if folder in MAPPING else "-")
            cells.append(f"{(s['unsure'] & among).sum() / max(among.sum(), 1):.1%}")
        print(f"| {folder} | {int(sel.sum())} | " + " | ".join(cells) + " |")


def print_confusion(name: str, s: dict, folders: np.ndarray) -> None:
    """Rows: the photo's folder; columns: the folder its top class answers for (bag: none of them)."""
    cols = [*MAPPING, "bag"]
    print(f"\n### Confusion between the seven folders: {name} (rows: true folder, columns: answer)\n")
    print("| folder | " + " | ".join(cols) + " |")
    print("| --- |" + " ---: |" * len(cols))
    answered = np.array([FOLDER_OF.get(int(t), "bag") for t in s["top"]])
    for folder in MAPPING:
        sel = (folders == folder) & s["mapped"]
        print(f"| {folder} | " + " | ".join(str(int((answered[sel] == c).sum())) for c in cols) + " |")


def write_sheets(out: Path, photos, steps, s: dict) -> None:
    """A contact sheet per folder of the photos the default system got wrong: one row per photo, one column
    per pipeline step (for looking, not committing: put DIR in a git-ignored folder)."""
    from PIL import Image  # noqa: PLC0415

    out.mkdir(parents=True, exist_ok=True)
    cell_px = 96
    for folder in MAPPING:
        wrong = [i for i, (f, _) in enumerate(photos) if f == folder and s["mapped"][i] and not s["right"][i]]
        if not wrong:
            continue
        n_steps = len(steps[wrong[0]])
        sheet = Image.new("RGB", (cell_px * n_steps, cell_px * len(wrong)), (255, 255, 255))
        for row, i in enumerate(wrong):
            for col, (_, arr) in enumerate(steps[i]):
                img = Image.fromarray(arr).convert("RGB")
                img.thumbnail((cell_px - 4, cell_px - 4))
                sheet.paste(img, (col * cell_px + 2, row * cell_px + 2))
        sheet.save(out / f"{folder}-wrong.png")
    print(f"\ncontact sheets of the default system's wrong answers in {out}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("photo_dir", type=Path)
    ap.add_argument("--model", help="the run to measure (default: the Predict page's default for photos)")
    ap.add_argument("--also", nargs="*", default=[], help="other runs, e.g. an earlier checkout's default")
    ap.add_argument("--sheets", type=Path, help="write contact sheets of the default system's wrong answers here")
    ap.add_argument("--segment-side", type=int, help=f"also measure our pipeline segmenting a copy this size "
                                                       f"(now {SEGMENT_SIDE} px; {WORK_SIDE}: as before it)")
    ap.add_argument("--iterations", type=int, help=f"with --segment-side: GrabCut's iterations there (now "
                                                   f"{GRABCUT_ITERATIONS})")
    args = ap.parse_args(argv)

    t0 = time.perf_counter()
    _folder_hashes.cache_clear()  # a folder read in an earlier call may have changed since
    photos = collect(args.photo_dir)
    if not photos:
        print(f"error: no photos in garment folders under {args.photo_dir}", file=sys.stderr)
        return 2
    folders = np.array([f for f, _ in photos])
    here = {fingerprint(p) for _, p in photos}
    ours, base, ok, steps, other = prepare_all(photos, bool(args.sheets), args.segment_side, args.iterations)
    print(f"{len(photos)} photos in {args.photo_dir} ({(~ok).sum()} unreadable), prepared in "
          f"{time.perf_counter() - t0:.0f}s")

    model = Run(Path(args.model)) if args.model else default_run()
    runs = [(True, model), *((False, Run(Path(p))) for p in args.also)]
    fair: dict[str, dict] = {}
    refused: list[str] = []
    for main_run, run in runs:
        if not (run.path / "config.json").exists():
            print(f"error: {run.path} is not a run directory", file=sys.stderr)
            return 2
        why = learned_here(run, here)
        predictor = Predictor.from_run(run)
        pairs = [("naive", base), ("ours", ours)] if main_run else [("ours", ours)]
        if args.segment_side and main_run:
            pairs.append((f"ours segmented at {args.segment_side} px"
                          + (f", {args.iterations} GrabCut iterations" if args.iterations else ""), other))
        for pipe, images in pairs:
            name = f"{pipe} + {run.name}"
            s = score(folders, ok, predictor, images)
            if why:
                refused.append(f"{name}: {why}. Measured anyway, for the record only: top-1 "
                               f"{cell(*rate(s['right'], s['mapped']))}, "
                               f"unsure {cell(*rate(s['unsure'], s['mapped']))}, "
                               f"unsure on hats, shorts, skirts {cell(*rate(s['unsure'], s['no_class']))}")
            else:
                fair[name] = s
    if fair:
        print_headline(fair)
        print_folders(fair, folders)
        main_name = next((n for n in fair if n.startswith("ours + ")), next(iter(fair)))
        print_confusion(main_name, fair[main_name], folders)
        if args.sheets:
            write_sheets(args.sheets, photos, steps, fair[main_name])
    if refused:
        print("\n### Not in the headline\n")
        for line in refused:
            print(f"- {line}")
    print(f"\ntook {time.perf_counter() - t0:.0f}s")
    return 0 if fair else 1


if __name__ == "__main__":
    sys.exit(main())
