"""The disk-backed job queue: runner processes train, cancel, fail visibly and respect concurrency."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from fashion_core import jobs
from fashion_core.config import TrainConfig
from fashion_core.runs import load_checkpoint

TINY = TrainConfig(model="mlp_baseline", epochs=1, batch_size=64, optimizer="adam", lr=1e-2,
                   weight_decay=0.0, schedule="none")


@pytest.fixture
def queue(tmp_path, monkeypatch, fake_root):
    monkeypatch.setenv("FASHION_JOBS_DIR", str(tmp_path / "jobs"))
    monkeypatch.setenv("FASHION_RUNS_DIR", str(tmp_path / "runs"))
    monkeypatch.setenv("FASHION_MNIST_ROOT", str(fake_root))
    return tmp_path


def wait_for(job: jobs.Job, states, timeout: float = 120) -> dict:
    deadline = time.time() + timeout
    while time.time() < deadline:
        jobs.tick()
        st = job.state
        if st.get("state") in states:
            return st
        time.sleep(0.2)
    raise AssertionError(f"job stayed {job.state}; log:\n{job.log_tail(40)}")


def test_job_trains_in_its_own_process_and_records_the_run(queue):
    job = jobs.submit(TINY)
    st = wait_for(job, jobs.FINISHED)
    assert st["state"] == "done", job.log_tail(40)
    assert st["pid"] != os.getpid()
    assert 0 <= st["test_accuracy"] <= 100
    run_dir = st["run_dir"]
    assert run_dir.startswith(str(queue / "runs"))
    assert os.path.basename(run_dir) == job.id  # the run is found under the job's own name
    assert os.path.exists(os.path.join(run_dir, "eval.json"))
    prog = job.progress
    assert prog["latest"]["phase"] == "done"
    assert any(h["phase"] == "epoch" for h in prog["history"])
    assert "test accuracy" in job.log_tail()
    # a "new tab" or restarted app sees the same job from disk alone
    again = [j for j in jobs.list_jobs() if j.id == job.id][0]
    assert again.state["state"] == "done" and again.config == TINY


def test_queue_respects_concurrency_and_cancel(queue):
    slow = TINY.replace(epochs=200)  # long enough to still be running when cancelled
    first, second = jobs.submit(slow), jobs.submit(slow)
    assert jobs.concurrency() == 1
    wait_for(first, ("running",))
    assert second.state["state"] == "queued"
    assert jobs.counts() == {"queued": 1, "running": 1}
    jobs.cancel(second)
    assert second.state["state"] == "cancelled"  # a queued job is cancelled at once
    jobs.cancel(first)
    assert wait_for(first, jobs.FINISHED)["state"] == "cancelled"
    assert jobs.counts() == {"queued": 0, "running": 0}


def test_failure_shows_the_error(queue, tmp_path):
    (tmp_path / "a-file").write_text("")  # a data root inside a file: nothing can be read or downloaded there,
    job = jobs.submit(TINY, data=tmp_path / "a-file" / "data")  # with or without a network
    st = wait_for(job, jobs.FINISHED)
    assert st["state"] == "failed"
    assert "DataMissingError" in st["error"] or "Fashion-MNIST" in st["error"]
    assert "failed" in job.log_tail(60)


def test_dead_runner_is_marked_failed(queue):
    job = jobs.submit(TINY.replace(epochs=200))
    st = wait_for(job, ("running",))
    os.kill(st["pid"], 9)
    st = wait_for(job, jobs.FINISHED, timeout=30)
    assert st["state"] == "failed" and "ended without reporting" in st["error"]


def test_stale_job_from_a_previous_app_is_failed_and_queue_moves_on(queue):
    # a 'running' job whose pid no longer exists (the machine rebooted, say)
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    stale = jobs.submit(TINY.replace(epochs=200))
    wait_for(stale, ("running",))
    jobs.cancel(stale)
    wait_for(stale, jobs.FINISHED)
    stale.set_state("running", pid=dead.pid)
    jobs.set_concurrency(1)
    fresh = jobs.submit(TINY)
    assert stale.state["state"] == "failed"
    assert wait_for(fresh, jobs.FINISHED)["state"] == "done"


def test_bad_config_is_refused_before_queueing(queue):
    with pytest.raises(ValueError, match="epochs"):
        jobs.submit(TINY.replace(epochs=0))
    assert jobs.list_jobs() == []
    with pytest.raises(ValueError, match="concurrency"):
        jobs.set_concurrency(0)


def test_live_curves_keep_the_whole_run_and_every_validation_point():
    history: list[dict] = []
    for step in range(1, 5001):  # a long run: 5,000 progress samples and 50 epochs
        jobs.record(history, {"phase": "train", "step": step, "train_loss": 1 / step})
        if step % 100 == 0:
            jobs.record(history, {"phase": "epoch", "step": step, "epoch": step // 100, "val_acc": 80.0})
    assert len(history) <= jobs.HISTORY_POINTS
    assert [h["epoch"] for h in history if h["phase"] == "epoch"] == list(range(1, 51))
    steps = [h["step"] for h in history if h["phase"] == "train"]
    assert steps[0] == 1 and steps[-1] > 4900 and steps == sorted(steps)  # from the start to now, in order


def test_a_runner_told_to_terminate_saves_its_place_and_says_so(queue):
    job = jobs.submit(TINY.replace(epochs=200))
    st = wait_for(job, ("running",))
    deadline = time.time() + 60
    while not (job.progress or {}).get("history") and time.time() < deadline:  # some training done
        time.sleep(0.2)
    os.kill(st["pid"], signal.SIGTERM)  # `kill PID`, or the machine shutting down
    assert wait_for(job, jobs.FINISHED)["state"] == "cancelled"  # not "failed": nothing went wrong
    assert "SIGTERM" in job.log_tail()
    assert "training (epoch 1/200)" in job.log_tail(50)  # the log says training began, not just "loading data"
    ck = load_checkpoint(Path(st["run_dir"]) / "last.pt")  # where a resume carries on
    assert ck["epoch"] * 1000 + ck["batch"] > 0
    # Resume: a new job finishes the same run from there, and every epoch is listed once
    assert jobs.resumable(job) == Path(st["run_dir"])
    again = jobs.resume(job)
    with pytest.raises(ValueError, match="already queued to resume"):
        jobs.resume(job)  # a second click
    done = wait_for(again, jobs.FINISHED, timeout=300)
    assert done["state"] == "done" and done["run_dir"] == st["run_dir"], again.log_tail(40)
    epochs = [json.loads(line)["epoch"] for line in (Path(st["run_dir"]) / "metrics.jsonl").read_text().splitlines()]
    assert epochs == list(range(1, 201))
    assert jobs.resumable(job) is None  # the run is finished now
    with pytest.raises(ValueError, match="no unfinished run"):
        jobs.resume(again)


def test_a_job_cancelled_while_its_runner_starts_moves_the_queue_on(queue, monkeypatch):
    with monkeypatch.context() as m:
        m.setattr(jobs, "tick", lambda: None)  # both wait in the queue
        first, second = jobs.submit(TINY), jobs.submit(TINY)
    (first.path / "cancel").touch()  # the cancel lands between its spawn and the runner's first look
    assert jobs.run_job(first) == 0
    assert first.state["state"] == "cancelled"
    assert second.state["state"] in ("starting", "running")  # started without any page calling tick()
    assert wait_for(second, jobs.FINISHED)["state"] == "done"


def test_a_fine_tune_named_by_a_relative_path_finds_its_start_in_the_runner(queue, tiny_run, monkeypatch):
    import shutil

    shutil.copytree(tiny_run.path, queue / "mine" / "start")
    monkeypatch.chdir(queue / "mine")  # the app started from another folder than the runner's
    job = jobs.submit(tiny_run.config.replace(epochs=1, init_from="start"))
    assert job.config.init_from == str(queue / "mine" / "start")
    assert wait_for(job, jobs.FINISHED)["state"] == "done", job.log_tail(40)


def test_a_run_named_after_a_job_never_takes_an_existing_folder(tmp_path):
    from fashion_core.runs import new_run_dir

    first, second = new_run_dir("mlp", tmp_path, name="job-a"), new_run_dir("mlp", tmp_path, name="job-a")
    assert (first.name, second.name) == ("job-a", "job-a-1") and first.is_dir() and second.is_dir()


def test_a_second_click_on_start_finds_the_job_already_queued(queue, monkeypatch):
    monkeypatch.setattr(jobs, "tick", lambda: None)  # it waits in the queue
    job = jobs.submit(TINY)
    assert jobs.unfinished_twin(TINY).id == job.id
    assert jobs.unfinished_twin(TINY.replace(seed=TINY.seed + 1)) is None  # another seed is another run
    jobs.cancel(job)
    assert job.state["state"] == "cancelled" and jobs.unfinished_twin(TINY) is None


def states_on_disk(job: jobs.Job, states, timeout: float = 120) -> dict:
    """Wait for a state without calling tick(): as when no page is open."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        if (st := job.state).get("state") in states:
            return st
        time.sleep(0.2)
    raise AssertionError(f"job stayed {job.state}; log:\n{job.log_tail(40)}")


def test_a_runner_killed_with_no_page_open_is_failed_and_the_queue_moves_on(queue):
    first = jobs.submit(TINY.replace(epochs=200))
    second = jobs.submit(TINY.replace(seed=1))
    st = states_on_disk(first, ("running",))
    os.kill(st["pid"], 9)  # nothing here calls tick() from now on: only the supervisor can notice
    st = states_on_disk(first, jobs.FINISHED, timeout=30)
    assert st["state"] == "failed" and "ended without reporting" in st["error"]
    assert states_on_disk(second, jobs.FINISHED)["state"] == "done"


SUBMIT = """
import sys
from fashion_core import jobs
from fashion_core.config import TrainConfig
cfg = TrainConfig(model="mlp_baseline", epochs=300, batch_size=64, optimizer="adam", lr=1e-2, weight_decay=0.0,
                  schedule="none")
sys.stdin.readline()  # both start together
try:
    jobs.submit(cfg, unique=True)
    print("queued")
except jobs.DuplicateJob as exc:
    print("duplicate:", exc)
"""


def test_two_tabs_starting_the_same_settings_at_once_queue_one_job(queue):
    procs = [subprocess.Popen([sys.executable, "-c", SUBMIT], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              text=True, cwd=Path(__file__).resolve().parent.parent) for _ in range(2)]
    time.sleep(3)  # both have imported the engine and wait on stdin
    for p in procs:
        p.stdin.write("go\n")
        p.stdin.flush()
    outs = sorted(p.communicate(timeout=60)[0].strip() for p in procs)
    assert outs[0].startswith("duplicate:") and outs[1] == "queued"
    assert len(jobs.list_jobs()) == 1
    for job in jobs.list_jobs():
        jobs.cancel(job)
        wait_for(job, jobs.FINISHED)


def test_a_jobs_folder_that_cannot_be_written_is_a_message_and_starts_nothing(queue, tmp_path, monkeypatch):
    (tmp_path / "a-file").write_text("")
    monkeypatch.setenv("FASHION_JOBS_DIR", str(tmp_path / "a-file" / "jobs"))  # cannot be made, even by root
    with pytest.raises(jobs.QueueError, match="cannot be written"):
        jobs.submit(TINY)
    assert "cannot be written" in jobs.tick() and jobs.list_jobs() == [] and jobs.counts()["queued"] == 0


def test_a_full_disk_leaves_no_half_made_job_and_no_runner(queue, monkeypatch):
    import errno

    def full(path, data):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(jobs, "atomic_write_json", lambda path, obj: full(path, obj))
    with pytest.raises(jobs.QueueError, match="No space left"):
        jobs.submit(TINY)
    assert [p.name for p in (queue / "jobs").iterdir() if not p.name.startswith(".")] == []
    assert not (queue / "runs").exists()  # no runner started, no orphan run folder
