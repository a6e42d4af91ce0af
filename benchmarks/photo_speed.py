"""How long an uploaded photo waits for its 28x28 input: photo.prepare now, next to the pipeline before it.

    python benchmarks/photo_speed.py [PHOTO_DIR] [--repeats 1] [--try 96/3 ...]

PHOTO_DIR: garment folders of photos (default ../shared/data/clothing-photos-dev). Every readable photo is
decoded once, outside the timing; then each pipeline prepares every photo in turn (interleaved, so all see the
same machine state): as the speed issue found it (segmented at 256 px, 4 GrabCut rounds, the second GrabCut
after the first), now (the second GrabCut started early on another core, pipeline.SPECULATE_BELOW), now with
the two one after the other (the same masks), and the settings given with --try. Prints p50, p90 and max per pipeline and the ratios.
Goal (issue: speed where users wait): p50 <= 40 ms and p90 <= 80 ms on a 2-core CPU.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from fashion_core.photos import pipeline  # noqa: E402
from fashion_core.photos.folders import collect  # noqa: E402
from fashion_core.photos.pipeline import (GRABCUT_ITERATIONS, SEGMENT_SIDE, WORK_SIDE, ImageError,  # noqa: E402
                                         load_image, prepare)

GOALS_MS = {"p50": 40.0, "p90": 80.0}
# (segmentation side, GrabCut rounds, second GrabCut started early): as the speed issue found it, and now
PIPELINES = {f"before: segmented at {WORK_SIDE} px, 4 GrabCut rounds, one GrabCut after the other": (WORK_SIDE, 4, False),
             f"now: segmented at {SEGMENT_SIDE} px, {GRABCUT_ITERATIONS} rounds, second GrabCut started early":
                 (SEGMENT_SIDE, GRABCUT_ITERATIONS, True)}
SEQUENTIAL = ("now, but one GrabCut after the other (the same masks)", (SEGMENT_SIDE, GRABCUT_ITERATIONS, False))


def timed_prepare(img, side: int, rounds: int, early: bool) -> float:
    """Milliseconds of one prepare(); early: the second GrabCut may start before the first ends."""
    speculate = pipeline.SPECULATE_BELOW
    pipeline.SPECULATE_BELOW = speculate if early else 0.0
    try:
        t0 = time.perf_counter()
        prepare(img, side, rounds)
        return (time.perf_counter() - t0) * 1000
    finally:
        pipeline.SPECULATE_BELOW = speculate


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("photo_dir", nargs="?", type=Path,
                    default=Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "clothing-photos-dev")
    ap.add_argument("--repeats", type=int, default=1, help="passes over the photos")
    ap.add_argument("--try", dest="candidates", nargs="*", default=[], metavar="SIDE/ROUNDS",
                    help="also time these settings, e.g. 96/3 (segmentation side in px / GrabCut rounds)")
    args = ap.parse_args()
    pipelines = dict([*PIPELINES.items(), SEQUENTIAL])
    for text in args.candidates:
        side, _, rounds = text.partition("/")
        if not (side.isdigit() and rounds.isdigit() and int(side) >= 16 and int(rounds) >= 1):
            ap.error(f"--try {text}: expected SIDE/ROUNDS, e.g. 96/3")
        pipelines[f"try: segmented at {side} px, {rounds} rounds"] = (int(side), int(rounds), True)
    images = []
    for _, path in collect(args.photo_dir):
        try:
            images.append(load_image(path))
        except ImageError:
            continue
    if not images:
        print(f"error: no readable photos in garment folders under {args.photo_dir}", file=sys.stderr)
        return 2
    times: dict[str, list[float]] = {name: [] for name in pipelines}
    for img in images[:3]:  # warm up
        for setting in pipelines.values():
            timed_prepare(img, *setting)
    for _ in range(args.repeats):
        for img in images:
            for name, setting in pipelines.items():
                times[name].append(timed_prepare(img, *setting))
    sizes = np.array([img.size for img in images])
    print(f"{len(images)} photos from {args.photo_dir} (median {int(np.median(sizes[:, 0]))}x"
          f"{int(np.median(sizes[:, 1]))} px), {args.repeats} pass(es); ms per photo.prepare\n")
    print("| pipeline | p50 | p90 | max | goal p50 <= 40, p90 <= 80 |")
    print("| --- | ---: | ---: | ---: | --- |")
    stats = {}
    for name, t in times.items():
        p50, p90, worst = np.percentile(t, 50), np.percentile(t, 90), max(t)
        stats[name] = (p50, p90, worst)
        met = p50 <= GOALS_MS["p50"] and p90 <= GOALS_MS["p90"]
        print(f"| {name} | {p50:.0f} | {p90:.0f} | {worst:.0f} | {'met' if met else 'missed'} |")
    before, now = (stats[name] for name in PIPELINES)
    print(f"\nnow vs before: p50 {before[0] / now[0]:.1f}x, p90 {before[1] / now[1]:.1f}x, "
          f"max {before[2] / now[2]:.1f}x faster")
    return 0


if __name__ == "__main__":
    sys.exit(main())
