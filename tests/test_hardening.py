"""What a hostile tester tried: resuming a finished run, links out of a run folder, damaged run
folders, kills during evaluation, and refusals that read plainly."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import zipfile
from io import BytesIO
from pathlib import Path

import pytest
import torch

from fashion_core import compare
from fashion_core.runs import Run, damaged, leaderboard, list_runs, load_checkpoint, load_model
from fashion_core.train import train

REPO = Path(__file__).resolve().parent.parent


def snapshot(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file()}


def test_resuming_a_finished_run_that_has_no_last_pt_is_refused_and_changes_nothing(tmp_path, tiny_run, fake_root):
    run = tmp_path / "compacted"
    shutil.copytree(tiny_run.path, run)
    (run / "last.pt").unlink()  # as every shipped checkpoint is
    before = snapshot(run)
    with pytest.raises(ValueError, match="no last.pt"):
        train(tiny_run.config, run, data_root=fake_root)
    out = subprocess.run([sys.executable, "-m", "fashion_core", "train", "--run-dir", str(run)], cwd=REPO,
                         capture_output=True, text=True, env={**os.environ, "FASHION_MNIST_ROOT": str(fake_root)})
    assert out.returncode == 2 and "no last.pt" in out.stderr and "Traceback" not in out.stderr
    assert snapshot(run) == before  # weights, metrics and evaluation as they were


def test_the_run_zip_holds_only_the_runs_own_files_and_a_linked_checkpoint_is_never_read(tmp_path, tiny_run):
    run = tmp_path / "linked"
    shutil.copytree(tiny_run.path, run)
    (run / "notes.txt").symlink_to("/etc/passwd")
    (run / "extra.json").symlink_to(tiny_run.path / "eval.json")  # a link, even to a run file, is not the run's
    names = zipfile.ZipFile(BytesIO(compare.zip_run(Run(run)))).namelist()
    assert "linked/notes.txt" not in names and "linked/extra.json" not in names and "linked/config.json" in names
    (run / "best.pt").unlink()
    (run / "best.pt").symlink_to("/dev/zero")
    t = time.perf_counter()
    with pytest.raises(ValueError, match="not a regular file"):
        load_checkpoint(run / "best.pt")
    with pytest.raises(ValueError, match="not a regular file"):
        load_model(run)
    assert time.perf_counter() - t < 5  # refused before reading, not after eating memory


def damaged_folders(base: Path, good: Run) -> dict[str, str]:
    """A copy of `good` damaged in each way the hostile tester tried: folder -> what the reason names."""
    def copy(name: str) -> Path:
        shutil.copytree(good.path, base / name)
        return base / name

    def edit(path: Path, change) -> None:
        path.write_text(json.dumps(change(json.loads(path.read_text()))))

    (base / "self_vote").mkdir()
    (base / "self_vote" / "config.json").write_text(json.dumps({"kind": "ensemble", "members": ["self_vote"],
                                                                "weights": [1.0]}))
    (base / "self_vote" / "eval.json").write_text((good.path / "eval.json").read_text())
    (base / "zero_vote").mkdir()
    (base / "zero_vote" / "config.json").write_text(json.dumps({"kind": "ensemble", "members": ["good"],
                                                                "weights": [0.0]}))
    (base / "zero_vote" / "eval.json").write_text((good.path / "eval.json").read_text())
    (copy("eval_list") / "eval.json").write_text("[1, 2]")
    (copy("config_list") / "config.json").write_text("[1, 2]")
    edit(copy("text_accuracy") / "eval.json", lambda e: {**e, "test_accuracy": "high"})
    edit(copy("no_matrix") / "eval.json", lambda e: {k: v for k, v in e.items() if k != "confusion_matrix"})
    with open(copy("garbage_metrics") / "metrics.jsonl", "a") as f:
        f.write("not json\n")
    edit(copy("newer_config") / "config.json", lambda c: {**c, "from_the_future": 1})
    (copy("empty_weights") / "best.pt").write_bytes(b"")
    torch.save(torch.zeros(3), copy("bare_tensor") / "best.pt")
    return {"self_vote": "not a trained run", "zero_vote": "weights", "eval_list": "eval.json",
            "config_list": "config.json", "text_accuracy": "test_accuracy", "no_matrix": "confusion matrix",
            "garbage_metrics": "metrics.jsonl", "newer_config": "from_the_future"}


def test_each_damaged_run_is_listed_with_its_reason_and_the_others_still_work(tmp_path, tiny_run):
    base = tmp_path / "runs"
    base.mkdir()
    shutil.copytree(tiny_run.path, base / "good")
    good = Run(base / "good")
    reasons = damaged_folders(base, good)
    runs = list_runs(base)
    found = {run.name: why for run, why in damaged(runs)}
    assert set(found) == set(reasons)
    for name, word in reasons.items():
        assert word in found[name], (name, found[name])
    # the weights of these two are only checked when loaded, and refused with a message
    for name in ("empty_weights", "bare_tensor"):
        with pytest.raises(ValueError, match="weights"):
            load_model(base / name)
    board = [row["run"] for row in leaderboard(runs)]
    assert "good" in board and not set(board) & set(reasons)


def test_a_run_killed_during_its_evaluation_is_left_off_the_board_and_resumes_from_evaluation(
        tmp_path, tiny_run, fake_root):
    run = tmp_path / "killed"
    shutil.copytree(tiny_run.path, run)
    Run(run).set_status("evaluating")  # killed while calibrating: eval.json is there, the run unfinished
    assert [r["run"] for r in leaderboard([Run(run)])] == []
    (run / ".eval.json.123.tmp").write_text("half a write")  # what a kill leaves
    metrics = (run / "metrics.jsonl").read_bytes()
    done = train(tiny_run.config, run, data_root=fake_root)
    assert done.status["state"] == "done" and (run / "metrics.jsonl").read_bytes() == metrics  # no epoch again
    assert [r["run"] for r in leaderboard([done])] == ["killed"] and not list(run.glob(".*.tmp"))


def test_a_refused_checkpoint_says_why_plainly(tmp_path):
    class Payload:
        def __reduce__(self):
            return (print, ("pwned",))

    torch.save({"model": Payload()}, tmp_path / "best.pt")
    with pytest.raises(ValueError) as caught:
        load_checkpoint(tmp_path / "best.pt")
    assert "weights_only" not in str(caught.value) and "\x1b[" not in str(caught.value)
    assert "never run" in str(caught.value)


@pytest.mark.parametrize("setting, field", [("seed=1e23", "seed"), ("seed=100000000000000000000000", "seed"),
                                            ("device=cuda:banana", "device"), ("val_count=59999", "val_count"),
                                            ("val_fraction=0.99", "val_fraction")])
def test_settings_that_would_crash_or_mislead_later_are_refused_before_a_folder_is_made(tmp_path, fake_root,
                                                                                       setting, field):
    runs = tmp_path / "runs"
    out = subprocess.run([sys.executable, "-m", "fashion_core", "train", "--model", "mlp_baseline", "--set",
                          setting, "--set", "val_split=\"stratified\"" if field == "val_count" else "epochs=1"],
                         cwd=REPO, capture_output=True, text=True,
                         env={**os.environ, "FASHION_MNIST_ROOT": str(fake_root), "FASHION_RUNS_DIR": str(runs)})
    assert out.returncode == 2 and f"{field}:" in out.stderr and "Traceback" not in out.stderr, out.stderr
    assert not runs.exists() or not any(runs.iterdir())  # no empty run folder left behind


def test_cuda_on_a_machine_without_it_is_refused_before_a_folder_is_made(tmp_path, fake_root):
    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    from fashion_core.config import ConfigError, TrainConfig

    with pytest.raises(ConfigError, match="device: names a CUDA GPU this machine does not have"):
        TrainConfig(device="cuda").validate()


def test_a_config_file_that_is_not_a_config_is_named_in_the_error(tmp_path):
    for text in ("[1, 2]", "{not json", '{"lr": "fast", "nope": 1}'):
        (tmp_path / "cfg.json").write_text(text)
        out = subprocess.run([sys.executable, "-m", "fashion_core", "train", "--config", str(tmp_path / "cfg.json")],
                             cwd=REPO, capture_output=True, text=True)
        assert out.returncode == 2 and "cfg.json" in out.stderr and "Traceback" not in out.stderr, out.stderr


def test_an_ensemble_written_before_runs_had_kinds_still_loads_as_an_ensemble(tmp_path, tiny_run):
    from fashion_core.config import TrainConfig
    from fashion_core.models.soft_vote import SoftVote

    shutil.copytree(tiny_run.path, tmp_path / "member")
    (tmp_path / "old_vote").mkdir()  # what the app wrote before: a fake training config and ensemble.json
    (tmp_path / "old_vote" / "config.json").write_text(json.dumps(TrainConfig(model="ensemble", note="old").to_dict()))
    (tmp_path / "old_vote" / "ensemble.json").write_text(json.dumps({"members": ["member"], "weights": [1.0]}))
    vote = Run(tmp_path / "old_vote")
    assert vote.kind == "ensemble" and vote.config.note == "old" and vote.members() == [Run(tmp_path / "member")]
    assert isinstance(load_model(vote), SoftVote)


def test_a_run_read_again_after_its_files_change_shows_the_new_contents(tmp_path, tiny_run):
    """eval.json and config.json are parsed once per version of the file (pages read them many times a
    render): a re-evaluation, a damaged file or an edited config shows at once, never the old parse."""
    from fashion_core.runs import atomic_write_json

    folder = tmp_path / "r"
    shutil.copytree(tiny_run.path, folder)
    run = Run(folder)
    ev = dict(run.eval)
    assert run.eval["test_accuracy"] == ev["test_accuracy"] and leaderboard([run])
    atomic_write_json(folder / "eval.json", {**ev, "test_accuracy": 12.5})  # re-evaluated: replaced atomically
    assert Run(folder).eval["test_accuracy"] == 12.5 and leaderboard([Run(folder)])[0]["test_accuracy"] == 12.5
    (folder / "eval.json").write_text("{broken")  # damaged in place
    assert Run(folder).eval is None and "eval.json" in Run(folder).damage and not leaderboard([Run(folder)])
    cfg = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps({**cfg, "epochs": cfg["epochs"] + 7}))  # edited in place
    assert Run(folder).config.epochs == cfg["epochs"] + 7
