"""Accuracy on real clothing photos: our photo pipeline and models next to the naive baseline.

    python benchmarks/photo_accuracy.py PHOTO_DIR [--model RUN] [--plain RUN] [--tuned RUN] [--fit-threshold]

PHOTO_DIR holds one folder per garment type (../shared/data/README.md). Prints, per folder, the
top-1 accuracy on mapped folders and the unsure rate everywhere, for each (pipeline, model) pair,
on the held-out half of the photos and on the other shares. Photos are split into shares by a hash
of the file name (fashion_core.photos.folders): held-out (half), calib and train (a quarter each).
--fit-threshold picks each model's unsure threshold on the calib share only and stores it in
the run's calibration.json; fine-tuned runs learn from the train share, or from train and calib
with a cross-fitted threshold (scripts/photo_threshold_cv.py); so held-out numbers never saw their
photos. A tuned run that learned from every photo (all four quarters, fashion_core.photos.folders.QUARTERS)
scores the photos it learned from (recognised by content, wherever they are) by cross-validation
instead: each quarter by the run's fold that left it out (shipped in RUN/folds, or in runs/photo_cv,
trained by scripts/photo_threshold_cv.py) with a threshold picked on the other three quarters only; photos it
never saw, it scores itself. Such a run also gets a table of all photos pooled.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from scipy.stats import binomtest  # noqa: E402

from fashion_core.calibration import load_calibration  # noqa: E402
from fashion_core.data import CLASSES  # noqa: E402
from fashion_core.photos.cv import default_cv_dir, existing_folds, nested_thresholds, score_fold  # noqa: E402
from fashion_core.photos.folders import (HELD_OUT, LEARNED_PHOTOS, MAPPING, QUARTERS, UNMAPPED, collect,  # noqa: E402
                                         fingerprint, quarter, share)
from fashion_core.photos.pipeline import ImageError, load_image, naive, prepare  # noqa: E402
from fashion_core.photos.selection import default_run, learned_photos, learned_shares  # noqa: E402
from fashion_core.photos.thresholds import photo_check, pick_threshold, set_threshold  # noqa: E402
from fashion_core.predictor import Predictor  # noqa: E402
from fashion_core.runs import CHECKPOINT_DIR, Run  # noqa: E402

def prepare_all(photos: list[tuple[str, Path]]) -> tuple[np.ndarray, np.ndarray, list[bool]]:
    """(N, 28, 28) ours, (N, 28, 28) naive, and which photos could be read."""
    ours, base, ok = [], [], []
    for _, path in photos:
        try:
            img = load_image(path)
        except ImageError:
            ours.append(np.zeros((28, 28), np.uint8)), base.append(np.zeros((28, 28), np.uint8)), ok.append(False)
            continue
        ours.append(prepare(img).image28), base.append(naive(img)), ok.append(True)
    return np.stack(ours), np.stack(base), ok


def summarise(folders: list[str], preds: np.ndarray, unsure: np.ndarray, keep: np.ndarray) -> dict:
    """Per-folder accuracy (mapped) and unsure rate, plus the mapped and unmapped totals."""
    rows = {}
    f = np.array(folders)
    for name in dict.fromkeys(folders):
        sel = (f == name) & keep
        if not sel.any():
            continue
        row = {"n": int(sel.sum()), "unsure": float(unsure[sel].mean())}
        if name in MAPPING:
            row["acc"] = float(np.isin(preds[sel], list(MAPPING[name])).mean())
        rows[name] = row
    mapped = np.isin(f, list(MAPPING)) & keep
    unmapped = np.isin(f, UNMAPPED) & keep
    correct = np.array([p in MAPPING.get(name, ()) for p, name in zip(preds, folders)])
    rows["MAPPED"] = {"n": int(mapped.sum()), "acc": float(correct[mapped].mean()) if mapped.any() else 0.0,
                      "unsure": float(unsure[mapped].mean()) if mapped.any() else 0.0,
                      "acc_sure": float(correct[mapped & ~unsure].mean()) if (mapped & ~unsure).any() else 0.0}
    rows["UNMAPPED"] = {"n": int(unmapped.sum()), "unsure": float(unsure[unmapped].mean()) if unmapped.any() else 0.0}
    return rows


def wilson(k: int, n: int) -> tuple[float, float]:
    """95% Wilson score interval of a rate k/n: how far a rate measured on few photos can be trusted."""
    if n == 0:
        return 0.0, 1.0
    ci = binomtest(k, n).proportion_ci(0.95, method="wilson")
    return float(ci.low), float(ci.high)


def print_intervals(system: str, rows: dict) -> None:
    """The totals of one system with their 95% intervals."""
    parts = []
    for row, key, what in (("MAPPED", "acc", "mapped accuracy"), ("MAPPED", "unsure", "mapped unsure"),
                           ("UNMAPPED", "unsure", "no-class unsure")):
        n, rate = rows[row]["n"], rows[row][key]
        k = round(rate * n)  # the photos behind the rate
        lo, hi = wilson(k, n)
        parts.append(f"{what} {k}/{n} = {rate:.1%} ({lo:.0%}-{hi:.0%})")
    print(f"{system}: " + ", ".join(parts) + " (95% Wilson intervals)")


def print_table(title: str, systems: dict[str, dict]) -> None:
    names = list(systems)
    print(f"\n### {title}\n")
    print("| folder | n | " + " | ".join(f"{s} acc | {s} unsure" for s in names) + " |")
    print("|---|---:|" + "---:|---:|" * len(names))
    folders = list(next(iter(systems.values())))
    for folder in folders:
        n = systems[names[0]][folder]["n"]
        cells = []
        for s in names:
            r = systems[s].get(folder, {})
            cells.append(f"{r['acc'] * 100:.1f}%" if "acc" in r else "-")
            cells.append(f"{r['unsure'] * 100:.1f}%" if "unsure" in r else "-")
        print(f"| {folder} | {n} | " + " | ".join(cells) + " |")


def cross_validated(run: Run, cv_dir: Path, ours: np.ndarray, folders: list[str], quarters: np.ndarray,
                    keep: np.ndarray) -> tuple[np.ndarray, np.ndarray, dict[str, float]]:
    """Top class and unsure for the photos in keep, for a run that learned from every quarter: each
    quarter (as the run learned it) as its fold scores it, judged by the threshold picked for it on the
    other quarters when the run's folds were checked (photo_check's quarter_thresholds; picked here
    the same way, photos.cv.nested_thresholds, for a check without them). Photos outside keep get
    class -1, not unsure."""
    scores, where = {}, {}
    for q, fold in existing_folds(run, cv_dir).items():
        sel = (quarters == q) & keep
        if not sel.any():
            continue
        scores[q], where[q] = score_fold(fold, ours[sel], [f for f, s in zip(folders, sel) if s]), sel
    stored = (load_calibration(run).check or {}).get("quarter_thresholds") or {}
    thresholds = {q: float(stored[q]) for q in scores} if set(scores) <= set(stored) else nested_thresholds(scores)
    preds, unsure = np.full(len(folders), -1), np.zeros(len(folders), bool)
    for q, sel in where.items():
        preds[sel], unsure[sel] = scores[q].top, scores[q].conf < thresholds[q]
    return preds, unsure, thresholds


def fit_threshold(key: str, run: Run, predictor: Predictor, learned: set[str], ours: np.ndarray,
                  folders: list[str], calib: np.ndarray, photo_dir: Path) -> Predictor:
    """--fit-threshold: the run's unsure threshold picked on the calib share (calib: which photos) and
    stored; a run that learned from that share is left alone (scripts/photo_threshold_cv.py cross-fits one)."""
    if "calib" in learned:
        print(f"{key}: learned from the calib share, so its threshold is not fitted there "
              f"(scripts/photo_threshold_cv.py cross-fits one)")
        return predictor
    answers = predictor.answers(ours)
    conf = np.array([a["confidence"] for a in answers])
    correct = np.array([a["index"] in MAPPING.get(f, ()) for a, f in zip(answers, folders)])
    mapped = np.array([f in MAPPING for f in folders])
    t = pick_threshold(conf[calib], mapped[calib])
    set_threshold(run, t, f"benchmarks/photo_accuracy.py --fit-threshold on the calib share "
                          f"({calib.sum()} photos) of {photo_dir.name}",
                  photo_check(conf[calib], correct[calib], mapped[calib], t))
    print(f"{key}: unsure threshold {t:.2f} (calib share), T = {predictor.calibration.temperature:.3f}")
    return Predictor.from_run(run, model=predictor.model, fit=False)  # with the new threshold


def print_report(systems: dict, folders: list[str], shares: np.ndarray, ok: np.ndarray, fair: np.ndarray,
                 cross_validated: bool, all_fair: bool, runs: dict[str, Run], t0: float) -> None:
    """The per-folder tables of every share (and of all photos when every answer is fair), with intervals."""
    order = [s for s in ("naive+plain", "ours+plain", "ours+photo", "ours+tuned") if s in systems]
    for title, keep in (("held-out half (the tuned run learned from these too, so they are scored as said above)"
                         if cross_validated else "held-out half (never used for any choice)",
                         (shares == "held-out") & ok & fair),
                        ("calib share (unsure thresholds chosen here, unless a run learned from it)",
                         (shares == "calib") & ok),
                        ("train share (fine-tuned runs learned from these)", (shares == "train") & ok),
                        *((("all photos (tuned: none was learned from, or each one learned from is scored by a fold, "
                            "and judged by a threshold, that did not see it; the plain and photo runs' thresholds "
                            "were fitted on the calib quarter)", ok),) if all_fair else ())):
        tables = {s: summarise(folders, *systems[s], keep) for s in order}
        print_table(title, tables)
        print()
        print_intervals(order[-1], tables[order[-1]])
    print("\nacc = top-1 accuracy (shoes: Sandal, Sneaker or Ankle boot); unsure = calibrated confidence "
          "under the run's threshold. Classes:", ", ".join(CLASSES))
    for key, run in runs.items():
        if (run.path / "calibration.json").exists():
            cal = load_calibration(run)
            print(f"{key} = {run.path}: T = {cal.temperature:.3f}, threshold = {cal.threshold:.2f}")
    print(f"total {time.perf_counter() - t0:.0f}s")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("photo_dir", type=Path)
    ap.add_argument("--model", default=str(CHECKPOINT_DIR / "photo_flagship"), help="photo-robust run")
    ap.add_argument("--plain", default=str(CHECKPOINT_DIR / "flagship"), help="plain run, same recipe")
    ap.add_argument("--tuned", default=None,
                    help="run fine-tuned on the photos (default: the one predict and the app use; skipped when absent)")
    ap.add_argument("--cv-dir", type=Path, default=None,
                    help="the folds of a tuned run that learned from every photo (default: the run's folds/ when "
                         "it ships them, else runs/photo_cv, where scripts/photo_threshold_cv.py trains them)")
    ap.add_argument("--fit-threshold", action="store_true",
                    help="choose each run's unsure threshold on the calib share and store it")
    args = ap.parse_args(argv)

    t0 = time.perf_counter()
    photos = collect(args.photo_dir)
    if not photos:
        print(f"error: no photos in mapped/unmapped folders under {args.photo_dir}", file=sys.stderr)
        return 2
    folders = [f for f, _ in photos]
    shares = np.array([share(p) for _, p in photos])
    quarters = np.array([quarter(p) for _, p in photos])
    ours, base, ok = prepare_all(photos)
    ok = np.array(ok)
    print(f"{len(photos)} photos ({(~ok).sum()} unreadable), prepared in {time.perf_counter() - t0:.0f}s")

    tuned = Path(args.tuned) if args.tuned else default_run().path
    runs = {"plain": Run(Path(args.plain)), "photo": Run(Path(args.model)), "tuned": Run(tuned)}
    systems: dict[str, dict] = {}
    cv_thresholds, cv_seen, cv, all_fair = {}, None, None, False
    fair = np.ones(len(photos), bool)  # photos every system may be measured on
    for key, run in runs.items():
        if not (run.path / "config.json").exists():
            print(f"skipping {key}: {run.path} is not a run directory", file=sys.stderr)
            continue
        learned = learned_shares(run)
        held = learned & set(HELD_OUT)
        by_content = learned_photos(run) if held or key == "tuned" else None
        # per photo, the quarter it was learned in ("" if never), whatever it is called here
        learned_q = None if by_content is None else np.array([by_content.get(fingerprint(p), "") for _, p in photos],
                                                              dtype=object)
        seen = None if learned_q is None else learned_q != ""
        if key == "tuned":
            all_fair = seen is not None and (not seen.any() or bool(held))  # held: the seen ones go by their folds
            if seen is not None and not held and (seen & (shares == "held-out")).any():
                fair = ~seen  # learned photos under held-out names (copied or renamed): not measured
                print(f"{(seen & (shares == 'held-out')).sum()} photos of the held-out half are ones {run.path} "
                      "learned from (under other names); the held-out table leaves them out")
        if held and (key != "tuned" or learned != set(QUARTERS)):
            print(f"error: {run.path} learned from the {' and '.join(sorted(held))} quarter(s); only a tuned run that "
                  "learned from all four can be measured (by cross-validation)", file=sys.stderr)
            return 2
        if held and seen is None:
            print(f"error: cannot tell which of these photos {run.path} learned from: it has no {LEARNED_PHOTOS} "
                  f"and its photo folder {run.config.photo_dir} is not here", file=sys.stderr)
            return 2
        if held and seen.any():
            try:
                cv = cross_validated(run, args.cv_dir or default_cv_dir(run), ours, folders,
                                     np.where(seen, learned_q, quarters), ok & seen)
            except ValueError as exc:
                print(f"error: {exc}", file=sys.stderr)
                return 2
            cv_seen, cv_thresholds = seen, cv[2]
            print(f"tuned = {run.path} learned from {seen.sum()} of these photos, so each is scored by the fold that "
                  "left its quarter out (the same recipe trained on the other three quarters) and judged by a "
                  "threshold picked on the other three: " + ", ".join(f"{q} {t:.2f}" for q, t in cv_thresholds.items()))
        predictor = Predictor.from_run(run)  # fits and stores a temperature when the run has none
        inputs = {"naive": base, "ours": ours}
        if args.fit_threshold:  # on our pipeline's inputs; both pipelines are then scored with it
            predictor = fit_threshold(key, run, predictor, learned, ours, folders, (shares == "calib") & ok,
                                      args.photo_dir)
        for pipe, images in inputs.items():
            answers = predictor.answers(images)
            systems[f"{pipe}+{key}"] = (np.array([a["index"] for a in answers]),
                                        np.array([a["unsure"] for a in answers]))
        if key == "tuned" and cv is not None:  # the photos it learned from: as their folds answer
            preds, unsure = systems["ours+tuned"]
            systems["ours+tuned"] = (np.where(cv_seen, cv[0], preds), np.where(cv_seen, cv[1], unsure))
    print_report(systems, folders, shares, ok, fair, cv is not None, all_fair, runs, t0)
    return 0


if __name__ == "__main__":
    sys.exit(main())
