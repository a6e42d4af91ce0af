"""A disk-backed queue of training jobs, each trained by its own runner process.

A job is a folder (jobs_dir()/<id>) holding request.json (config + where to train), state.json,
progress.json (latest progress and a short history for live curves), log.txt and, to ask for a
stop, a `cancel` flag file. The disk is the only shared state, so a browser reload, a second tab
or an app restart all see the same queue. `tick()` starts queued jobs up to the concurrency limit
and marks jobs whose runner died as failed; the app calls it while open and every runner calls it
when it ends, so the queue keeps moving without a browser.
"""
from __future__ import annotations

import contextlib
import fcntl
import os
import signal
import subprocess
import sys
import threading
import time
import traceback
from dataclasses import dataclass
from pathlib import Path

from fashion_core.config import TrainConfig
from fashion_core.data import data_root
from fashion_core.runs import atomic_write_json, new_run_dir, read_json, runs_dir

ACTIVE = ("queued", "starting", "running")
FINISHED = ("done", "failed", "cancelled")
HISTORY_POINTS = 400  # progress samples kept for the live curves
STARTING_GRACE_S = 30.0  # a runner that has not said hello after this long is dead


def jobs_dir() -> Path:
    """Where job folders live: FASHION_JOBS_DIR or ./jobs."""
    return Path(os.environ.get("FASHION_JOBS_DIR", "jobs")).resolve()


@dataclass(frozen=True)
class Job:
    path: Path

    @property
    def id(self) -> str:
        return self.path.name

    @property
    def request(self) -> dict:
        return read_json(self.path / "request.json", {})

    @property
    def state(self) -> dict:
        return read_json(self.path / "state.json", {"state": "unknown"})

    @property
    def progress(self) -> dict:
        return read_json(self.path / "progress.json", {"latest": {}, "history": []})

    @property
    def created(self) -> float:
        """When it was queued (its request's time on disk)."""
        try:
            return (self.path / "request.json").stat().st_mtime
        except OSError:
            return 0.0

    @property
    def config(self) -> TrainConfig:
        return TrainConfig.from_dict(self.request["config"])

    @property
    def cancel_requested(self) -> bool:
        return (self.path / "cancel").exists()

    def log_tail(self, lines: int = 20) -> str:
        try:
            text = (self.path / "log.txt").read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def set_state(self, state: str, **extra) -> None:
        atomic_write_json(self.path / "state.json", {**self.state, "state": state, **extra})

    def log(self, line: str) -> None:
        with open(self.path / "log.txt", "a") as f:
            f.write(time.strftime("%H:%M:%S ") + line + "\n")


# --- settings ----------------------------------------------------------------------------------
def concurrency() -> int:
    """How many jobs may run at once (default 1: the CPU or GPU is shared)."""
    return int(read_json(jobs_dir() / "settings.json", {}).get("concurrency", 1))


def set_concurrency(n: int) -> None:
    if not 1 <= int(n) <= 16:
        raise ValueError(f"concurrency: must be 1..16 (got {n})")
    atomic_write_json(jobs_dir() / "settings.json", {"concurrency": int(n)})
    tick()


# --- queue operations ------------------------------------------------------------------------
def submit(config: TrainConfig, data: str | os.PathLike | None = None,
           runs: str | os.PathLike | None = None) -> Job:
    """Validate config, queue it as a job and start it when a slot is free. Relative paths in it are
    taken from this process's folder (the runner works in the repository root)."""
    config = _resolved(config)
    config.validate()
    return _queue(config.model, {"config": config.to_dict(), "data_root": str(data_root(data).resolve()),
                                 "runs_dir": str(Path(runs or runs_dir()).resolve())},
                  f"queued: model {config.model}, {config.epochs} epoch(s)")


def _stopped_run(job: Job) -> Path | None:
    """The run a cancelled or failed job left unfinished (it has last.pt and no evaluation), or None."""
    run_dir = job.state.get("run_dir")
    if job.state.get("state") not in ("cancelled", "failed") or not run_dir:
        return None
    run_dir = Path(run_dir)
    return run_dir if (run_dir / "last.pt").exists() and not (run_dir / "eval.json").exists() else None


def _resumed_later(job: Job, run_dir: Path, listed: list[Job] | None = None) -> Job | None:
    """A job queued after `job` to carry the same run on, or None; `listed`: list_jobs(), if at hand."""
    return next((j for j in (listed if listed is not None else list_jobs())
                 if j.request.get("resume") == str(run_dir) and j.created > job.created), None)


def resumable(job: Job, listed: list[Job] | None = None) -> Path | None:
    """The run a cancelled or failed job left unfinished, unless a later job has taken it on (then
    that job, if it stops too, is the one to resume): what the Jobs list offers to Resume. Pass
    `listed` (list_jobs()) when asking for many jobs, so the folder is not listed for each."""
    run_dir = _stopped_run(job)
    return run_dir if run_dir is not None and _resumed_later(job, run_dir, listed) is None else None


def resume(job: Job) -> Job:
    """Queue a new job, named after the run with "-resumed", that carries a stopped job's run on from
    its last checkpoint (same folder, same settings; the epochs already done are not trained again)."""
    run_dir = _stopped_run(job)
    if run_dir is None:
        raise ValueError(f"job {job.id} left no unfinished run to resume")
    if any(j.request.get("resume") == str(run_dir) for j in _active_jobs()):
        raise ValueError(f"{run_dir.name} is already queued to resume")
    if later := _resumed_later(job, run_dir):
        raise ValueError(f"{run_dir.name} was taken on by a later job, {later.id}: resume it from that job")
    return _queue(job.config.model, {**job.request, "resume": str(run_dir)}, f"queued: resumes {run_dir}",
                  name=f"{run_dir.name}-resumed")


def _queue(model: str, request: dict, message: str, name: str = "") -> Job:
    job = Job(new_run_dir(model, jobs_dir(), name=name))  # timestamp-model, as runs are, unless named
    atomic_write_json(job.path / "request.json", request)
    job.set_state("queued", created=time.time())
    job.log(message)
    tick()
    return job


def _resolved(config: TrainConfig) -> TrainConfig:
    """Relative paths in a config taken from this process's folder, as the runner will need them."""
    return config.replace(**{k: str(Path(v).resolve()) for k in ("init_from", "photo_dir")
                             if (v := getattr(config, k))})


def unfinished_twin(config: TrainConfig) -> Job | None:
    """A queued or running job with exactly these settings (a double click on "Start training"), or None."""
    config = _resolved(config)
    return next((j for j in _active_jobs() if j.config == config), None)


def _active_jobs() -> list[Job]:
    """The queued, starting and running jobs."""
    return [j for j in list_jobs() if j.state.get("state") in ACTIVE]


def list_jobs() -> list[Job]:
    """Every job, newest first."""
    base = jobs_dir()
    if not base.is_dir():
        return []
    return sorted((Job(p) for p in base.iterdir() if (p / "request.json").exists()),
                  key=lambda j: (j.created, j.id), reverse=True)


def counts() -> dict[str, int]:
    """{'queued': n, 'running': n} for the sidebar."""
    states = [j.state.get("state") for j in list_jobs()]
    return {"queued": states.count("queued"), "running": states.count("running") + states.count("starting")}


def cancel(job: Job) -> None:
    """Ask a job to stop: a queued job is cancelled at once, a running one within a batch."""
    (job.path / "cancel").touch()
    with _lock():
        if job.state.get("state") == "queued":
            job.set_state("cancelled", finished=time.time())
            job.log("cancelled before it started")


def tick() -> None:
    """Fail jobs whose runner died, then start queued jobs while slots are free."""
    with _lock():
        jobs = list_jobs()
        for job in jobs:
            st = job.state
            if st.get("state") in ("starting", "running") and not _runner_alive(job, st):
                job.set_state("failed", error=f"the runner process (pid {st.get('pid')}) ended "
                                              f"without reporting a result; see the log",
                              finished=time.time())
                job.log("marked failed: runner process is gone")
        busy = sum(j.state.get("state") in ("starting", "running") for j in jobs)
        for job in sorted((j for j in jobs if j.state.get("state") == "queued"), key=lambda j: (j.created, j.id)):
            if busy >= concurrency():
                break
            _spawn(job)
            busy += 1


@contextlib.contextmanager
def _lock():
    """An exclusive lock on the jobs folder, so two ticks never start the same job twice."""
    base = jobs_dir()
    base.mkdir(parents=True, exist_ok=True)
    with open(base / ".lock", "w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def _spawn(job: Job) -> None:
    """Start the runner in its own session so it outlives the app process that started it."""
    log = open(job.path / "log.txt", "a")
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "FASHION_JOBS_DIR": str(jobs_dir())}
    root = str(Path(__file__).resolve().parent.parent)
    env["PYTHONPATH"] = root + os.pathsep + env.get("PYTHONPATH", "")
    proc = subprocess.Popen([sys.executable, "-m", "fashion_core.jobs", str(job.path)], cwd=root,
                            stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                            env=env, start_new_session=True)
    log.close()
    job.set_state("starting", pid=proc.pid, started=time.time())


def _runner_alive(job: Job, st: dict) -> bool:
    pid = st.get("pid")
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    proc = Path(f"/proc/{pid}")
    if proc.exists():
        # a finished child of this app stays a zombie until reaped; a reused pid runs something else
        stat = (proc / "stat").read_text(errors="replace")
        if stat.rsplit(")", 1)[-1].split()[0] == "Z":
            return False
        cmdline = (proc / "cmdline").read_bytes().decode(errors="replace")
        return job.id in cmdline
    return st.get("state") == "running" or time.time() - st.get("started", 0) < STARTING_GRACE_S


# --- the runner process ------------------------------------------------------------------------
def record(history: list[dict], point: dict) -> None:
    """Append a progress point; past HISTORY_POINTS, every other training sample goes, so the live
    curves keep the whole run (at a coarser step) and every epoch's validation point."""
    history.append(point)
    if len(history) > HISTORY_POINTS:
        samples = [i for i, h in enumerate(history) if h["phase"] == "train"]
        drop = set(samples[1::2])
        history[:] = [h for i, h in enumerate(history) if i not in drop]


def run_job(job: Job) -> int:
    """Body of the runner process: train the request, record the outcome, start the next job."""
    from fashion_core.train import train  # late: keeps the queue import light for the app

    req = job.request
    if job.cancel_requested:  # cancelled while its runner was starting
        job.set_state("cancelled", finished=time.time())
        tick()
        return 0
    history: list[dict] = []
    last_write = [0.0]
    announced: list[bool] = []  # the first training report gets a line in the log

    def on_progress(p: dict) -> None:
        p = {**p, "time": time.time()}
        if p.get("phase") in ("train", "epoch"):
            record(history, {k: p[k] for k in ("phase", "step", "epoch", "train_loss", "train_acc",
                                               "val_loss", "val_acc", "time") if k in p})
        final = p.get("phase") in ("epoch", "test", "done", "cancelled")
        if final or p["time"] - last_write[0] >= 0.5:
            last_write[0] = p["time"]
            atomic_write_json(job.path / "progress.json", {"latest": p, "history": history})
        if p.get("phase") in ("train", "epoch") and not announced:  # the first report, whichever comes first
            announced.append(True)
            job.log(f"training (epoch {p['epoch']}/{p['epochs']}); a line per epoch follows")
        if p.get("phase") == "epoch":
            val = f", val acc {p['val_acc']:.2f}%" if "val_acc" in p else ""
            job.log(f"epoch {p['epoch']}/{p['epochs']}: train loss {p['train_loss']:.4f}, "
                    f"train acc {p['train_acc']:.2f}%{val}")
        elif p.get("phase") in ("loading data", "test"):
            job.log({"loading data": "loading data", "test": "evaluating on the test set"}[p["phase"]])

    try:
        config = TrainConfig.from_dict(req["config"])
        run_dir = (Path(req["resume"]) if req.get("resume")  # train() carries on from its last.pt
                   else new_run_dir(config.model, Path(req["runs_dir"]), name=job.id))  # the job's name
        with _lock():  # waits until the tick that spawned us has recorded 'starting'
            job.set_state("running", pid=os.getpid(), run_dir=str(run_dir))
        job.log(f"runner pid {os.getpid()}, run {run_dir}")
        run = train(config, run_dir, on_progress, lambda: job.cancel_requested or _terminated.is_set(),
                    req["data_root"])
        state = run.status.get("state")
        if state == "done":
            acc = run.eval["test_accuracy"]
            job.log(f"done: test accuracy {acc:.2f}%")
            job.set_state("done", test_accuracy=acc, finished=time.time())
        else:
            resume = "; Resume carries the run on from where it stopped" if (run_dir / "last.pt").exists() else ""
            job.log(("stopped by SIGTERM" if _terminated.is_set() else "cancelled") + resume)
            job.set_state("cancelled", finished=time.time())
        code = 0
    except BaseException as exc:  # noqa: BLE001 - the job must record any failure for the UI
        job.log("failed:\n" + traceback.format_exc())
        job.set_state("failed", error=f"{type(exc).__name__}: {exc}", finished=time.time())
        code = 1
    tick()
    return code


_terminated = threading.Event()  # SIGTERM (`kill PID`, a shutdown) stops like Cancel: the epoch so far is kept

if __name__ == "__main__":
    signal.signal(signal.SIGTERM, lambda *_: _terminated.set())
    sys.exit(run_job(Job(Path(sys.argv[1]))))
