"""Command line: python -m fashion_core list-models | train | evaluate | predict | ensemble | sweep | gan."""
from __future__ import annotations

import argparse
import json
import signal
import sys
from pathlib import Path


def _cmd_list_models(args: argparse.Namespace) -> int:
    from fashion_core.models import list_models, model_info

    rows = []
    for name in list_models():
        info = model_info(name)
        rows.append({"name": name, "report": info.report, "params": info.num_params,
                     "reported_params": info.reported_params, "reported_accuracy": info.reported_accuracy,
                     "description": info.description})
    if args.json:
        print(json.dumps(rows, indent=1))
        return 0
    print(f"{'model':22} {'report':6} {'params':>11} {'reported acc':>12}  description")
    for r in rows:
        acc = f"{r['reported_accuracy']:.2f}%" if r["reported_accuracy"] else "-"
        print(f"{r['name']:22} {r['report']:6} {r['params']:>11,} {acc:>12}  {r['description']}")
    return 0


def _config_file(path: Path) -> dict:
    """The TrainConfig fields a --config file holds; ValueError naming the file otherwise."""
    try:
        loaded = json.loads(path.read_text())
    except ValueError as exc:
        raise ValueError(f"--config {path}: not JSON ({exc})") from None
    if not isinstance(loaded, dict):
        raise ValueError(f"--config {path}: must hold a JSON object of TrainConfig fields (got {type(loaded).__name__})")
    try:
        from fashion_core.config import TrainConfig

        TrainConfig.from_dict(loaded)
    except (ValueError, TypeError) as exc:
        raise ValueError(f"--config {path}: {exc}") from None
    return loaded


def _with_flags(settings: dict, args: argparse.Namespace, flags: tuple[str, ...]) -> dict:
    """settings with the given command-line flags and every --set FIELD=VALUE laid over them."""
    from fashion_core.config import parse_setting

    settings = {**settings, **{f: getattr(args, f) for f in flags if getattr(args, f) is not None}}
    for item in args.set or []:
        key, value = parse_setting(item)
        settings[key] = value
    return settings


def _with_bar(fit, quiet: bool, postfix, epoch_line):
    """fit(on_progress, should_stop) under a tqdm bar of its steps (postfix(report): the bar's numbers) and a
    line per epoch (epoch_line(report)); SIGTERM stops it like Cancel, after the current batch."""
    from tqdm import tqdm

    stopping = {"now": False}
    signal.signal(signal.SIGTERM, lambda *_: stopping.update(now=True))
    bar = tqdm(total=None, unit="step", file=sys.stderr, disable=quiet, dynamic_ncols=True)

    def show(p: dict) -> None:
        if p.get("phase") == "train":
            bar.total = p["total_steps"]
            bar.update(p["step"] - bar.n)
            bar.set_description(f"epoch {p['epoch']}/{p['epochs']}")
            bar.set_postfix(**postfix(p), img_s=f"{p['images_per_s']:.0f}", refresh=False)
        elif p.get("phase") == "epoch":
            tqdm.write(epoch_line(p), file=sys.stderr)

    try:
        return fit(show, lambda: stopping["now"])
    finally:
        bar.close()


def _cmd_train(args: argparse.Namespace) -> int:
    from fashion_core.config import RECIPES, TrainConfig
    from fashion_core.runs import new_run_dir, read_config
    from fashion_core.train import train

    saved = Path(args.run_dir) if args.run_dir and (Path(args.run_dir) / "config.json").exists() else None
    # resuming: `--run-dir DIR` alone carries on with DIR's own config (other flags must agree with it)
    settings = read_config(saved).to_dict() if saved else {}
    settings.update(RECIPES[args.recipe] if args.recipe else {})
    if args.config:
        settings.update(_config_file(Path(args.config)))
    cfg = TrainConfig.from_dict(_with_flags(settings, args, ("model", "epochs", "batch_size", "lr", "optimizer",
                                                             "schedule", "loss", "device", "seed"))).validate()
    run_dir = Path(args.run_dir) if args.run_dir else new_run_dir(cfg.model)  # made once the config is valid
    print(f"run: {run_dir}", file=sys.stderr)
    run = _with_bar(lambda show, stop: train(cfg, run_dir, show, stop), args.quiet,
                    lambda p: {"loss": f"{p['train_loss']:.4f}", "acc": f"{p['train_acc']:.2f}%"},
                    lambda p: f"epoch {p['epoch']}: train {p['train_acc']:.2f}%"
                              + (f" val {p['val_acc']:.2f}%" if "val_acc" in p else "") + f" ({p['time_s']:.0f}s)")
    ev = run.eval
    if ev is None:
        print(f"stopped: {run.status.get('state')}; resume with --run-dir {run_dir}", file=sys.stderr)
        return 1
    print(json.dumps({"run": str(run_dir), "test_accuracy": ev["test_accuracy"], "params": ev["params"],
                      "train_time_s": ev["train_time_s"], "device": ev["device"]}))
    return 0


def _cmd_evaluate(args: argparse.Namespace) -> int:
    from fashion_core.evaluation import write_eval
    from fashion_core.runs import Run

    run = Run(Path(args.run_dir))
    if not (run.path / "config.json").exists():
        print(f"error: {run.path} is not a run directory", file=sys.stderr)
        return 2
    ev = write_eval(run)
    print(json.dumps({k: ev[k] for k in ("test_accuracy", "params", "latency_ms", "throughput_per_s")}))
    return 0


def _cmd_predict(args: argparse.Namespace) -> int:
    from fashion_core.photos.pipeline import NOT_FOUND
    from fashion_core.photos.selection import resolve_run
    from fashion_core.predictor import Predictor, describe

    predictor = Predictor.from_run(resolve_run(args.model))
    failures = 0
    for path in args.images:
        result = predictor.answer_file(path)
        failures += "error" in result
        if args.json:
            print(json.dumps(result))
        elif "error" in result:
            print(f"{path}: error: {result['error']}")
        else:
            print(f"{path}: {describe(result)}" + ("" if result["garment_found"] else f" ({NOT_FOUND.lower()})"))
    return 1 if failures else 0


def _cmd_photo_threshold(args: argparse.Namespace) -> int:
    from fashion_core.photos.thresholds import fit_threshold
    from fashion_core.runs import Run

    run = Run(Path(args.run_dir))
    if not (run.path / "config.json").exists():
        print(f"error: {run.path} is not a run directory", file=sys.stderr)
        return 2
    check = fit_threshold(run, args.photos)
    print(json.dumps({"run": str(run.path), **check}))
    return 0


def _cmd_ensemble(args: argparse.Namespace) -> int:
    from fashion_core.ensemble import create_ensemble

    weights = None
    if args.weights:
        try:
            weights = [float(w) for w in args.weights.split(",")]
        except ValueError:
            raise ValueError(f"weights: {args.weights!r} is not a comma-separated list of numbers") from None
    for m in args.members:
        if not (Path(m) / "config.json").exists():
            raise ValueError(f"{m} is not a run directory")
    run = create_ensemble(Path(args.out), [Path(m) for m in args.members], weights)
    print(json.dumps({"run": str(run.path), "weights": list(run.config.weights),
                      "test_accuracy": run.eval["test_accuracy"]}))
    return 0


def _cmd_sweep(args: argparse.Namespace) -> int:
    from fashion_core import sweeps

    if args.action == "create":
        if bool(args.config) == bool(args.preset):
            raise ValueError("sweep create: give --preset NAME or --config FILE (a JSON sweep: base, space, sampler, "
                             "pruner, n_trials, max_epochs)")
        budget = {k: v for k, v in (("n_trials", args.n_trials), ("max_epochs", args.max_epochs)) if v is not None}
        if args.train_subset is not None:
            budget["base_changes"] = {"train_subset": args.train_subset}
        cfg = (sweeps.preset(args.preset, **budget) if args.preset else
               sweeps.SweepConfig.from_dict(json.loads(Path(args.config).read_text())))
        study = sweeps.create(args.name, cfg, args.storage)
        print(json.dumps({"sweep": args.name, "storage": sweeps.storage_url(args.name, args.storage),
                          "trials": cfg.n_trials, "queued": len(study.trials)}))
        return 0
    if args.action == "work":
        stopping = {"now": False}
        signal.signal(signal.SIGTERM, lambda *_: stopping.update(now=True))
        ran = sweeps.work(args.name, args.storage, should_stop=lambda: stopping["now"])
        study, cfg = sweeps.load(args.name, args.storage)
        print(json.dumps({"sweep": args.name, "ran": ran, "finished": sweeps.counted(study), "budget": cfg.n_trials}))
        return 0
    study, _ = sweeps.load(args.name, args.storage)
    for row in sweeps.trial_table(study):
        print(json.dumps(row.__dict__))
    return 0


def _cmd_gan(args: argparse.Namespace) -> int:
    from fashion_core import gan

    if args.action == "quality":
        from fashion_core.gan_quality import measure, report_lines

        print("\n".join(report_lines(measure(args.run_dir, args.classifier, args.n))))
        return 0
    if args.action == "sample":
        from PIL import Image

        grid = gan.sample_grid(gan.load_generator(args.run_dir), args.per_class,
                              gan.GRID_SEED if args.seed is None else args.seed)
        Image.fromarray(grid).save(args.out)
        print(args.out)
        return 0
    return _train_gan(args, gan)


def _train_gan(args: argparse.Namespace, gan) -> int:
    from fashion_core.config import GanConfig
    from fashion_core.runs import read_config

    run_dir = Path(args.run_dir)
    saved = (run_dir / "config.json").exists()
    settings = read_config(run_dir).to_dict() if saved else {}  # resuming: the run's own config
    cfg = GanConfig.from_dict(_with_flags(settings, args, ("epochs", "batch_size", "device", "seed"))).validate()
    print(f"run: {run_dir}", file=sys.stderr)
    run = _with_bar(lambda show, stop: gan.train_gan(cfg, run_dir, show, stop), args.quiet,
                    lambda p: {"d": f"{p['d_loss']:.3f}", "g": f"{p['g_loss']:.3f}"},
                    lambda p: f"epoch {p['epoch']}: D loss {p['d_loss']:.3f}, G loss {p['g_loss']:.3f} "
                              f"({p['time_s']:.0f}s); samples in {run_dir / 'samples'}")
    state = run.status.get("state")
    if state != "done":
        print(f"stopped: {state}; resume with: python -m fashion_core gan train {run_dir}", file=sys.stderr)
        return 1
    print(json.dumps({"run": str(run_dir), "epochs": cfg.epochs, "samples": str(run_dir / "samples")}))
    return 0


def _add_sweep_parser(sub) -> None:
    p = sub.add_parser("sweep", help="hyperparameter sweeps on Optuna: create one, work on it (any number of "
                                     "workers on any number of machines), show its trials")
    p.add_argument("action", choices=["create", "work", "show"])
    p.add_argument("name")
    p.add_argument("--config", help="create: a JSON SweepConfig (base, space, sampler, pruner, n_trials, max_epochs)")
    p.add_argument("--preset", help="create: one of the reports' experiments (fashion_core.sweeps.SWEEP_PRESETS)")
    p.add_argument("--n-trials", dest="n_trials", type=int, help="create --preset: fewer (or more) trials")
    p.add_argument("--max-epochs", dest="max_epochs", type=int, help="create --preset: epochs per trial")
    p.add_argument("--train-subset", dest="train_subset", type=int, help="create --preset: the first N training images")
    p.add_argument("--storage", help="an Optuna RDB URL (postgresql://user@host/db) shared by every worker; "
                                     "default: an SQLite file under runs/sweeps/NAME")
    p.set_defaults(fn=_cmd_sweep)


def _add_gan_parser(sub) -> None:
    p = sub.add_parser("gan", help="a class-conditional GAN: train one (resumes a stopped run), measure its "
                                   "quality with a shipped classifier, or save a grid of its samples")
    p.add_argument("action", choices=["train", "quality", "sample"])
    p.add_argument("run_dir", help="the generator's run folder (train: made if new, e.g. runs/gans/mine)")
    p.add_argument("--epochs", type=int)
    p.add_argument("--batch-size", dest="batch_size", type=int)
    p.add_argument("--device")
    p.add_argument("--seed", type=int, help="train: the run's seed; sample: the grid's noise")
    p.add_argument("--set", action="append", metavar="FIELD=VALUE", help="train: any GanConfig field (JSON value)")
    p.add_argument("--quiet", action="store_true")
    p.add_argument("--classifier", help="quality: the classifier run whose features are compared "
                                        "(default: checkpoints/flagship)")
    p.add_argument("-n", type=int, default=10_000, help="quality: images generated (and test images compared)")
    p.add_argument("--per-class", dest="per_class", type=int, default=10, help="sample: images per class")
    p.add_argument("--out", default="samples.png", help="sample: the PNG to write")
    p.set_defaults(fn=_cmd_gan)


def main(argv: list[str] | None = None) -> int:
    from fashion_core.config import RECIPES

    parser = argparse.ArgumentParser(prog="python -m fashion_core", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("list-models", help="the model registry")
    p.add_argument("--json", action="store_true")
    p.set_defaults(fn=_cmd_list_models)

    p = sub.add_parser("train", help="train a model into a run directory (resumes if it exists)")
    p.add_argument("--recipe", choices=list(RECIPES), help="start from a report's recipe")
    p.add_argument("--config", help="JSON file of TrainConfig fields")
    p.add_argument("--model")
    p.add_argument("--epochs", type=int)
    p.add_argument("--batch-size", dest="batch_size", type=int)
    p.add_argument("--lr", type=float)
    p.add_argument("--optimizer")
    p.add_argument("--schedule")
    p.add_argument("--loss")
    p.add_argument("--device")
    p.add_argument("--seed", type=int)
    p.add_argument("--set", action="append", metavar="FIELD=VALUE", help="any other config field (JSON value)")
    p.add_argument("--run-dir")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(fn=_cmd_train)

    p = sub.add_parser("evaluate", help="re-measure a run on the official test set (rewrites eval.json)")
    p.add_argument("run_dir")
    p.set_defaults(fn=_cmd_evaluate)

    p = sub.add_parser("predict", help="classify image files")
    p.add_argument("images", nargs="+")
    p.add_argument("--model", help="a run directory, a shipped run's folder name (flagship_wide), or an "
                                   "architecture name (resnet: its most accurate shipped run); default: the "
                                   "shipped run tuned on photos")
    p.add_argument("--json", action="store_true", help="one JSON object per image")
    p.set_defaults(fn=_cmd_predict)

    p = sub.add_parser("photo-threshold", help="pick a run's unsure threshold on the holdout slice of its photo "
                                               "folder (training a photo run does this when it ends)")
    p.add_argument("run_dir")
    p.add_argument("--photos", help="a training photo folder, for a run that learned from none (its holdout slice)")
    p.set_defaults(fn=_cmd_photo_threshold)

    p = sub.add_parser("ensemble", help="soft-vote runs into a new run (weights given or fitted on validation)")
    p.add_argument("out", help="the ensemble's run directory")
    p.add_argument("members", nargs="+", help="run directories")
    p.add_argument("--weights", help="comma-separated, one per member (default: fitted on the validation "
                                     "images all members held out)")
    p.set_defaults(fn=_cmd_ensemble)

    _add_sweep_parser(sub)

    _add_gan_parser(sub)

    args = parser.parse_args(argv)
    try:
        return args.fn(args)
    except (ValueError, KeyError) as exc:  # bad config, unknown model, missing data...
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:  # a --config or image path that is missing or unreadable
        print(f"error: cannot read {exc.filename or 'a file'}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    except RuntimeError as exc:  # DataMissingError and friends
        print(f"error: {exc}", file=sys.stderr)
        return 3


if __name__ == "__main__":
    sys.exit(main())
