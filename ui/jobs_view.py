"""The Train page's Jobs list: an entry per job with its progress, Cancel / Resume / Load buttons,
and its live curves and log tail; redrawn from the queue on disk every 2 s."""
from __future__ import annotations

from collections.abc import Callable

import streamlit as st

from fashion_core import jobs
from ui.charts import job_curves


@st.fragment(run_every=2)
def job_list(on_load: Callable[[jobs.Job], None]) -> None:
    """Every job, newest first. on_load: the "Load its settings into the form" button's callback."""
    jobs.tick()
    all_jobs = jobs.list_jobs()
    if not all_jobs:
        st.caption("No jobs yet.")
    for job in all_jobs:
        job_entry(job, all_jobs, on_load)


def job_entry(job: jobs.Job, all_jobs: list[jobs.Job], on_load: Callable[[jobs.Job], None]) -> None:
    """One job's expander; all_jobs: the whole list (only a run's latest job offers Resume)."""
    state = job.state
    s = state.get("state", "unknown")
    note = job.config.note
    with st.expander(f"{job.id} · **{s}**" + (f" · {state['test_accuracy']:.2f}%" if "test_accuracy" in state else "")
                     + (f" · {note[:60]}{'…' * (len(note) > 60)}" if note else ""),
                     expanded=s in jobs.ACTIVE or s == "failed"):
        if s == "failed":
            st.error(state.get("error", "failed"))
        progress(s, job.progress.get("latest", {}))
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
        if stopped := jobs.resumable(job, all_jobs):
            resume_button(job, stopped.name)
        if st.button("Load its settings into the form", key=f"load-{job.id}", on_click=on_load, args=(job,),
                     help="Fill the form above with this job's settings, model and augmentation included."):
            st.rerun()  # the form lies outside this fragment
        # the list redraws every 2 s: finished jobs draw their curves and log only when asked
        if s in jobs.ACTIVE or s == "failed" or st.toggle("Curves and log", key=f"show-{job.id}"):
            curves(job)
            st.code(job.log_tail(12) or "(no log yet)", language="text")


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
    hist = job.progress.get("history", [])
    if not hist:
        return
    loss, acc = job_curves(hist)
    c1, c2 = st.columns(2)
    c1.plotly_chart(loss, width="stretch", key=f"loss-{job.id}")
    c2.plotly_chart(acc, width="stretch", key=f"acc-{job.id}")
