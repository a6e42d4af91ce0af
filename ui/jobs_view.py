"""The Train page's Jobs list: an entry per job with its progress, Cancel / Resume / Load buttons,
the job that resumed it, and its live curves and log tail (a sweep's worker: its state, Cancel and
log); redrawn from the queue on disk every 2 s."""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import streamlit as st

from fashion_core import jobs
from ui.charts import job_curves

CHART_WIDTH = 400  # px: two fit side by side in a job's entry on a 1400 px window, one a line at 900 px


@st.fragment(run_every=2)
def job_list(on_load: Callable[[jobs.Job], None]) -> None:
    """Every job, newest first. on_load: the "Load its settings into the form" button's callback."""
    jobs.tick()
    all_jobs = jobs.list_jobs()
    if not all_jobs:
        st.caption("No jobs yet.")
    for job in all_jobs:
        if "config" in job.request:
            job_entry(job, all_jobs, on_load)
        else:  # a sweep's worker or a generator: it shares the slots, so it is listed; shown in full elsewhere
            worker_entry(job)


def job_entry(job: jobs.Job, all_jobs: list[jobs.Job], on_load: Callable[[jobs.Job], None]) -> None:
    """One job's expander; all_jobs: the whole list (only a run's latest job offers Resume)."""
    state = job.state
    s = state.get("state", "unknown")
    note = job.config.note
    later = jobs._resumed_later(job, Path(state["run_dir"]), all_jobs) if state.get("run_dir") else None
    with st.expander(f"{job.id} · **{s}**" + (f" · resumed as {later.id}" if later else "")
                     + (f" · {state['test_accuracy']:.2f}%" if "test_accuracy" in state else "")
                     + (f" · {note[:60]}{'…' * (len(note) > 60)}" if note else ""),
                     expanded=s in jobs.ACTIVE or s == "failed" and not later):
        if s == "failed":
            st.error(state.get("error", "failed"))
        progress(s, job.progress.get("latest", {}))
        cancel_button(job, s)
        if stopped := jobs.resumable(job, all_jobs):
            resume_button(job, stopped.name)
        if st.button("Load its settings into the form", key=f"load-{job.id}", on_click=on_load, args=(job,),
                     help="Fill the form above with this job's settings, model and augmentation included."):
            st.rerun()  # the form lies outside this fragment
        # the list redraws every 2 s: finished jobs draw their curves and log only when asked
        if s in jobs.ACTIVE or s == "failed" or st.toggle("Curves and log", key=f"show-{job.id}"):
            curves(job)
            st.code(job.log_tail(12) or "(no log yet)", language="text", wrap_lines=True)  # no line cut off


def worker_entry(job: jobs.Job) -> None:
    """A job that trains no classifier of its own (a sweep's worker, a generator): its state, Cancel and its log."""
    s = job.state.get("state", "unknown")
    where = ("a generator: its samples are on the Dataset page's Synthetic tab" if job.kind == "gan"
             else "a sweep's worker: its trials are on the Tune page")
    with st.expander(f"{job.id} · **{s}** · {where}"):
        cancel_button(job, s)
        st.code(job.log_tail(12) or "(no log yet)", language="text", wrap_lines=True)


def cancel_button(job: jobs.Job, s: str) -> None:
    """Cancel for a queued or running job (s: its state), or what cancelling it is waiting for."""
    if s in jobs.ACTIVE and job.cancel_requested:
        st.caption("Cancelling: it stops after the current batch, or once the validation pass under way "
                   "ends.")
    elif s in jobs.ACTIVE and st.button("Cancel", key=f"cancel-{job.id}"):
        try:
            jobs.cancel(job)
        except jobs.QueueError as exc:
            st.error(f"Could not cancel: {exc}")
        else:
            st.rerun()  # the sidebar's job count too


def progress(s: str, latest: dict) -> None:
    """A running job's progress bar; latest: its last progress report."""
    if s in ("running", "starting") and latest.get("total_steps"):
        frac = min(latest.get("step", 0) / latest["total_steps"], 1.0)
        eta = f" · ETA {latest['eta_s']:.0f} s" if "eta_s" in latest else ""  # epoch-end reports carry none
        st.progress(frac, f"epoch {latest.get('epoch', '?')}/{latest.get('epochs', '?')} · step "
                          f"{latest.get('step')}/{latest['total_steps']}{eta} · "
                          f"{latest.get('images_per_s', 0):,.0f} images/s")
    elif s in ("running", "starting"):
        st.progress(0.0, latest.get("phase", "starting…"))


def resume_button(job: jobs.Job, run_name: str) -> None:
    """Resume: queue a job that carries the stopped run (run_name) on from its last checkpoint."""
    if st.button("Resume", key=f"resume-{job.id}",
                 help=f"Queue a new job that carries {run_name} on from its last checkpoint."):
        try:
            resumed = jobs.resume(job)
        except (ValueError, jobs.QueueError) as exc:  # already queued (another tab, a second click); a full disk
            st.warning(str(exc))
        else:
            st.session_state["train.toast"] = f"Queued job {resumed.id}: it carries {run_name} on."
            st.rerun()  # the new job heads the list


def curves(job: jobs.Job) -> None:
    """The job's loss and accuracy curves side by side, once it has reported any."""
    reports = job.progress
    if not reports.get("history"):
        return
    loss, acc = job_curves(reports["history"], reports.get("latest"), resumed=bool(job.request.get("resume")))
    row = st.container(horizontal=True)  # side by side where both fit, else one under the other
    row.plotly_chart(loss, width=CHART_WIDTH, key=f"loss-{job.id}")
    row.plotly_chart(acc, width=CHART_WIDTH, key=f"acc-{job.id}")
