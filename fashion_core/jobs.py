"""A disk-backed queue of training jobs, each trained by its own runner process.

A job is a folder (jobs_dir()/<id>) holding request.json (config + where to train), state.json,
progress.json (latest progress and a short history for live curves), log.txt and, to ask for a
stop, a `cancel` flag file. The disk is the only shared state, so a browser reload, a second tab
or an app restart all see the same queue. `tick()` starts queued jobs up to the concurrency limit
and marks jobs whose runner died as failed; the app calls it while open and every runner calls it
when it ends, so the queue keeps moving without a browser. Each runner is watched by a small
supervisor process (`python -m fashion_core.jobs --supervise JOB`): when the runner dies without
recording a result (killed, out of memory), the supervisor marks its job failed and starts the next
one, whether or not any page is open.
"""
from __future__ import annotations

import contextlib
import fcntl
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
import traceback
from dataclasses import dataclass
from pathlib import Path

from fashion_core import runs as run_folders
from fashion_core.config import GanConfig, TrainConfig
from fashion_core.data import data_root
from fashion_core.runs import atomic_write_json, new_run_dir, read_json, runs_dir

ACTIVE = ("queued", "starting", "running")
FINISHED = ("done", "failed", "cancelled")
HISTORY_POINTS = 400  # progress samples kept for the live curves
STARTING_GRACE_S = 30.0  # a runner that has not said hello after this long is dead
NAME = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9_.-]{0,63}")  # a job's (and its run's) folder name


class QueueError(OSError):
    """The jobs folder cannot be written (read-only, full): nothing was queued or started."""


class DuplicateJob(ValueError):
    """A queued or running job already has exactly these settings."""


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
    def sweep(self) -> str | None:
        """The sweep this job works on (a sweep job trains its trials), or None for a training job."""
        return self.request.get("sweep")

    @property
    def kind(self) -> str:
        """"train" (a classifier), "gan" (a generator, fashion_core.gan) or "sweep" (a sweep's worker)."""
        req = self.request
        return "sweep" if "sweep" in req else "gan" if "gan" in req else "train"

    @property
    def config(self) -> TrainConfig | GanConfig:
        """A training or GAN job's config (a sweep job's trials each have their own: see fashion_core.sweeps)."""
        req = self.request
        return GanConfig.from_dict(req["gan"]) if "gan" in req else TrainConfig.from_dict(req["config"])

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
           runs: str | os.PathLike | None = None, unique: bool = False, name: str = "") -> Job:
    """Validate config, queue it as a job and start it when a slot is free. Relative paths in it are
    taken from this process's folder (the runner works in the repository root). unique: raise
    DuplicateJob instead when a queued or running job has these settings (a second click, a second tab).
    name: the job's and its run's folder name (ValueError when name_problem finds one); by default the
    time and the model."""
    config = _resolved(config)
    config.validate()
    request = {"config": config.to_dict(), "data_root": str(data_root(data).resolve()),
               "runs_dir": str(Path(runs or runs_dir()).resolve())}
    with _lock():  # the check and the queueing at once: two tabs clicking together queue one job
        if name and (problem := name_problem(name, request["runs_dir"])):
            raise ValueError(problem)
        if unique and (twin := unfinished_twin(config)):
            raise DuplicateJob(f"Job {twin.id} with exactly these settings is already {twin.state.get('state')}")
        job = _queue(config.model, request, f"queued: model {config.model}, {config.epochs} epoch(s)", name=name)
    tick()
    return job


def name_problem(name: str, runs: str | os.PathLike | None = None) -> str | None:
    """Why `name` cannot name a new job and its run (runs: the runs folder), or None: it is 1 to 64
    letters, digits, '-', '_' or '.', not starting with a dot, and no job, run or shipped run has it yet."""
    if not NAME.fullmatch(name):
        return "a run's name is 1 to 64 letters, digits, '-', '_' or '.', and does not start with a dot"
    folders = (jobs_dir(), Path(runs or runs_dir()), run_folders.CHECKPOINT_DIR)  # read now: tests move them
    taken = [d / name for d in folders if (d / name).exists()]
    return f"the name {name} is taken: {taken[0]} exists" if taken else None


def submit_gan(config: GanConfig, data: str | os.PathLike | None = None, runs: str | os.PathLike | None = None,
               name: str = "") -> Job:
    """Queue the training of a generator (fashion_core.gan) into RUNS/gans/NAME; DuplicateJob when a queued
    or running job has these settings (a second click, a second tab)."""
    config.validate()
    request = {"gan": config.to_dict(), "data_root": str(data_root(data).resolve()),
               "runs_dir": str(Path(runs or runs_dir()).resolve())}
    with _lock():
        if name and (problem := name_problem(name, Path(request["runs_dir"]) / "gans")):
            raise ValueError(problem)
        if twin := next((j for j in _active_jobs() if j.kind == "gan" and j.config == config), None):
            raise DuplicateJob(f"Job {twin.id} with exactly these settings is already {twin.state.get('state')}")
        job = _queue(config.model, request, f"queued: a generator, {config.epochs} epoch(s)", name=name)
    tick()
    return job


def submit_sweep(name: str, storage: str | None = None, data: str | os.PathLike | None = None,
                 runs: str | os.PathLike | None = None) -> Job:
    """Queue a worker for an existing sweep (fashion_core.sweeps.create): it trains trials until the
    sweep's budget is spent, and a later one carries on where a cancelled one stopped. One job per sweep
    at a time here; more workers join from other machines with `python -m fashion_core sweep work`."""
    request = {"sweep": name, "storage": storage, "data_root": str(data_root(data).resolve()),
               "runs_dir": str(Path(runs or runs_dir()).resolve())}
    with _lock():
        if twin := next((j for j in _active_jobs() if j.sweep == name), None):
            raise DuplicateJob(f"Job {twin.id} is already {twin.state.get('state')} on sweep {name}")
        job = _queue("sweep", request, f"queued: a worker for sweep {name}", name=f"sweep-{name}")
    tick()
    return job


def _stopped_run(job: Job) -> Path | None:
    """The run a cancelled or failed job left unfinished, or None: it has last.pt and did not finish
    (a kill during its evaluation leaves it to be evaluated again)."""
    run_dir = job.state.get("run_dir")
    if job.state.get("state") not in ("cancelled", "failed") or not run_dir:
        return None
    run_dir = Path(run_dir)
    done = read_json(run_dir / "status.json", {}).get("state") == "done"
    return run_dir if (run_dir / "last.pt").exists() and not done else None


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
    with _lock():  # the checks and the queueing at once: two tabs clicking Resume queue one job
        if any(j.request.get("resume") == str(run_dir) for j in _active_jobs()):
            raise ValueError(f"{run_dir.name} is already queued to resume")
        if later := _resumed_later(job, run_dir):
            raise ValueError(f"{run_dir.name} was taken on by a later job, {later.id}: resume it from that job")
        queued = _queue(job.config.model, {**job.request, "resume": str(run_dir)}, f"queued: resumes {run_dir}",
                        name=f"{run_dir.name}-resumed")
    tick()
    return queued


def _queue(model: str, request: dict, message: str, name: str = "") -> Job:
    """Write a new job folder (under the lock); a write that fails leaves no half-made job behind."""
    try:
        job = Job(new_run_dir(model, jobs_dir(), name=name))  # timestamp-model, as runs are, unless named
    except OSError as exc:
        raise QueueError(f"cannot queue the job: {jobs_dir()} cannot be written ({exc.strerror or exc})") from exc
    try:
        job.set_state("queued", created=time.time())  # state before request: list_jobs() needs request.json
        atomic_write_json(job.path / "request.json", request)
        job.log(message)
    except OSError as exc:
        shutil.rmtree(job.path, ignore_errors=True)
        raise QueueError(f"cannot queue the job: writing to {jobs_dir()} failed ({exc.strerror or exc})") from exc
    return job


def _resolved(config: TrainConfig) -> TrainConfig:
    """Relative paths in a config taken from this process's folder, as the runner will need them."""
    return config.replace(**{k: str(Path(v).resolve()) for k in ("init_from", "photo_dir")
                             if (v := getattr(config, k))})


def unfinished_twin(config: TrainConfig) -> Job | None:
    """A queued or running job with exactly these settings (a double click on "Start training"), or None."""
    config = _resolved(config)
    return next((j for j in _active_jobs() if j.kind == "train" and j.config == config), None)


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


def tick() -> str | None:
    """Fail jobs whose runner died, then start queued jobs while slots are free. Returns None, or why
    the queue cannot move (its folder cannot be written): then nothing is started, since a runner
    that cannot record its state would die unseen."""
    try:
        with _lock():
            jobs = list_jobs()
            for job in jobs:
                st = job.state
                if st.get("state") in ("starting", "running") and not _runner_alive(job, st):
                    _mark_dead(job, st)
            busy = sum(j.state.get("state") in ("starting", "running") for j in jobs)
            for job in sorted((j for j in jobs if j.state.get("state") == "queued"),
                              key=lambda j: (j.created, j.id)):
                if busy >= concurrency():
                    break
                _spawn(job)
                busy += 1
    except QueueError as exc:
        return f"the job queue is stopped: {exc}"
    except OSError as exc:  # a state file that cannot be written, a runner that cannot be started
        return f"the job queue could not move on ({exc.strerror or exc}); it tries again on the next check"
    return None


def _mark_dead(job: Job, st: dict) -> None:
    job.set_state("failed", error=f"the runner process (pid {st.get('pid')}) ended without reporting a result; "
                                  "see the log", finished=time.time())
    job.log("marked failed: runner process is gone")


@contextlib.contextmanager
def _lock():
    """An exclusive lock on the jobs folder, so two ticks never start the same job twice."""
    base = jobs_dir()
    try:
        base.mkdir(parents=True, exist_ok=True)
        f = open(base / ".lock", "a")
    except OSError as exc:
        raise QueueError(f"cannot queue or start jobs: {base} cannot be written ({exc.strerror or exc})") from exc
    with f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


ROOT = Path(__file__).resolve().parent.parent


def _command(*args: str) -> tuple[list[str], dict]:
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "FASHION_JOBS_DIR": str(jobs_dir())}
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    return [sys.executable, "-m", "fashion_core.jobs", *args], env


def _spawn(job: Job) -> None:
    """Start the job's supervisor in its own session, so it outlives the app process that started it;
    it starts the runner. The state is written first: a job whose state cannot be recorded is not started."""
    job.set_state("starting", pid=None, started=time.time())
    cmd, env = _command("--supervise", str(job.path))
    subprocess.Popen(cmd, cwd=ROOT, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                     env=env, start_new_session=True)


def supervise(job: Job) -> int:
    """Body of the supervisor process: run the job's runner, and when it ends without recording a
    result (killed, out of memory), mark the job failed; then move the queue on."""
    with open(job.path / "log.txt", "a") as log:
        cmd, env = _command(str(job.path))
        proc = subprocess.Popen(cmd, cwd=ROOT, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                env=env)
    with _lock():
        if job.state.get("state") == "starting":
            job.set_state("starting", pid=proc.pid)
    code = proc.wait()
    with _lock():
        st = job.state
        if st.get("state") in ACTIVE:
            _mark_dead(job, st)
    tick()
    return code


def _runner_alive(job: Job, st: dict) -> bool:
    pid = st.get("pid")
    if not pid:
        return _starting_in_time(st)  # its supervisor has not started the runner yet
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    proc = Path(f"/proc/{pid}")
    if proc.exists():
        # a finished child stays a zombie until reaped; a reused pid runs something else
        try:
            stat = (proc / "stat").read_text(errors="replace")
            cmdline = (proc / "cmdline").read_bytes().decode(errors="replace")
        except OSError:  # it ended while we looked
            return False
        if stat.rsplit(")", 1)[-1].split()[0] == "Z":
            return False
        return job.id in cmdline
    return st.get("state") == "running" or _starting_in_time(st)


def _starting_in_time(st: dict) -> bool:
    return time.time() - st.get("started", 0) < STARTING_GRACE_S


# --- the runner process ------------------------------------------------------------------------
def record(history: list[dict], point: dict) -> None:
    """Append a progress point; past HISTORY_POINTS, every other training sample goes, so the live
    curves keep the whole run (at a coarser step) and every epoch's validation point."""
    history.append(point)
    if len(history) > HISTORY_POINTS:
        samples = [i for i, h in enumerate(history) if h["phase"] == "train"]
        drop = set(samples[1::2])
        history[:] = [h for i, h in enumerate(history) if i not in drop]


# the phases a job's log names as they begin (epochs get a line of their own)
PHASE_LOG = {"loading data": "loading data", "loading photos": "preparing the labelled photos",
             "test": "evaluating on the test set",
             "photo threshold": "picking the unsure threshold on the photos' holdout slice"}


def _progress_writer(job: Job):
    """The train() progress callback of a runner: progress.json for the live curves, and the log."""
    history: list[dict] = []
    last_write = [0.0]
    announced: list[bool] = []  # the first training report gets a line in the log

    def on_progress(p: dict) -> None:
        p = {**p, "time": time.time()}
        if p.get("phase") in ("train", "epoch"):
            record(history, {k: p[k] for k in ("phase", "step", "epoch", "train_loss", "train_acc",
                                               "val_loss", "val_acc", "d_loss", "g_loss", "time") if k in p})
        final = p.get("phase") in ("epoch", "test", "done", "cancelled")
        if final or p["time"] - last_write[0] >= 0.5:
            last_write[0] = p["time"]
            atomic_write_json(job.path / "progress.json", {"latest": p, "history": history})
        if p.get("phase") in ("train", "epoch") and not announced:  # the first report, whichever comes first
            announced.append(True)
            job.log(f"training (epoch {p['epoch']}/{p['epochs']}); a line per epoch follows")
        if p.get("phase") == "epoch" and "d_loss" in p:  # a generator's epoch
            job.log(f"epoch {p['epoch']}/{p['epochs']}: D loss {p['d_loss']:.3f}, G loss {p['g_loss']:.3f}")
        elif p.get("phase") == "epoch":
            val = f", val acc {p['val_acc']:.2f}%" if "val_acc" in p else ""
            job.log(f"epoch {p['epoch']}/{p['epochs']}: train loss {p['train_loss']:.4f}, "
                    f"train acc {p['train_acc']:.2f}%{val}")
        elif p.get("phase") in PHASE_LOG:
            job.log(PHASE_LOG[p["phase"]])

    return on_progress


def _set_final(job: Job, state: str, **extra) -> None:
    """A runner's outcome, written under the lock so that a tick never reads it half-way through its checks."""
    with _lock():
        job.set_state(state, finished=time.time(), **extra)


def _claim(job: Job, config: TrainConfig) -> Path | None:
    """Move the job from starting to running and make (or take) its run folder; None when it is no
    longer ours to run (a tick gave up on it, or it was cancelled while starting)."""
    req = job.request
    with _lock():
        if job.cancel_requested and job.state.get("state") in ACTIVE:  # cancelled before it could start
            job.set_state("cancelled", finished=time.time())
            return None
        if job.state.get("state") != "starting":
            return None
        base = Path(req["runs_dir"]) / ("gans" if job.kind == "gan" else "")  # generators apart from classifiers
        run_dir = (Path(req["resume"]) if req.get("resume")  # training carries on from its last.pt
                   else new_run_dir(config.model, base, name=job.id))  # the job's name
        job.set_state("running", pid=os.getpid(), run_dir=str(run_dir))
    return run_dir


def run_sweep_job(job: Job) -> int:
    """Body of a sweep job's runner: work on the sweep until its budget is spent or the job is cancelled."""
    from fashion_core import sweeps  # late: keeps the queue import light for the app

    req = job.request
    with _lock():
        if job.state.get("state") != "starting":
            return 0
        job.set_state("running", pid=os.getpid())
    stop = lambda: job.cancel_requested or _terminated.is_set()  # noqa: E731
    try:
        job.log(f"worker pid {os.getpid()} on sweep {job.sweep}")
        ran = sweeps.work(job.sweep, req.get("storage"), Path(req["runs_dir"]) / "sweeps" / job.sweep, stop,
                          req["data_root"])
        study, cfg = sweeps.load(job.sweep, req.get("storage"))
        done = sweeps.counted(study)
        job.log(f"ran {ran} trial(s); {done} of {cfg.n_trials} finished")
        _set_final(job, "cancelled" if stop() and done < cfg.n_trials else "done", trials=done)
        code = 0
    except BaseException as exc:  # noqa: BLE001 - the job must record any failure for the UI
        code = _failed(job, exc)
    finally:
        tick()
    return code


def _failed(job: Job, exc: BaseException) -> int:
    """Record a runner's failure with its traceback in the log; the runner's exit code."""
    job.log("failed:\n" + traceback.format_exc())
    _set_final(job, "failed", error=f"{type(exc).__name__}: {exc}")
    return 1


def run_job(job: Job) -> int:
    """Body of the runner process: train the request (a classifier or a generator), record the outcome,
    start the next job."""
    if job.sweep:
        return run_sweep_job(job)
    # late: keeps the queue import light for the app
    from fashion_core.gan import train_gan
    from fashion_core.train import train

    run_dir = None
    try:
        config = job.config
        run_dir = _claim(job, config)
        if run_dir is None:
            job.log("not run: the job was cancelled or given up on before its runner started")
            return 0
        job.log(f"runner pid {os.getpid()}, run {run_dir}")
        run = (train_gan if job.kind == "gan" else train)(
            config, run_dir, _progress_writer(job), lambda: job.cancel_requested or _terminated.is_set(),
            job.request["data_root"])
        if run.status.get("state") == "done":
            result = {"test_accuracy": run.eval["test_accuracy"]} if job.kind == "train" else {}
            job.log("done: " + (f"test accuracy {result['test_accuracy']:.2f}%" if result
                                else f"samples in {run_dir / 'samples'}"))
            _set_final(job, "done", **result)
        else:
            resume = "; Resume carries the run on from where it stopped" if (run_dir / "last.pt").exists() else ""
            job.log(("stopped by SIGTERM" if _terminated.is_set() else "cancelled") + resume)
            _set_final(job, "cancelled")
        code = 0
    except BaseException as exc:  # noqa: BLE001 - the job must record any failure for the UI
        if run_dir is not None and run_dir.is_dir() and not any(run_dir.iterdir()):
            run_dir.rmdir()  # made, but nothing could be written in it: no empty run is left behind
        code = _failed(job, exc)
    finally:
        tick()
    return code


_terminated = threading.Event()  # SIGTERM (`kill PID`, a shutdown) stops like Cancel: the epoch so far is kept

if __name__ == "__main__":
    if sys.argv[1] == "--supervise":
        sys.exit(supervise(Job(Path(sys.argv[2]))))
    signal.signal(signal.SIGTERM, lambda *_: _terminated.set())
    sys.exit(run_job(Job(Path(sys.argv[1]))))
