"""The Dataset page's Synthetic view: a trained generator's garments per class (a seed redraws them),
beside real ones, with the shipped classifier's confidence on each; a walk between two latent points;
the generator's measured quality; and the training of a new generator as a background job."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import plotly.graph_objects as go
import streamlit as st
import torch

from fashion_core import gan, jobs
from fashion_core.config import GanConfig, field_help
from fashion_core.data import CLASSES, FashionData
from fashion_core.dataset_stats import contact_sheet, upscale
from fashion_core.gan_quality import GOALS, default_classifier
from fashion_core.inference import infer
from fashion_core.runs import Run, read_json
from ui import common

TILE = 56  # px per image on screen (28 x 2)


@st.cache_resource(max_entries=4, show_spinner="Loading the generator…")
def _generator(path: str, stamp: float) -> gan.Generator:
    return gan.load_generator(path)


def generator_for(run: Run) -> gan.Generator:
    """The run's averaged generator on the CPU, cached until its weights change."""
    return _generator(str(run.path), run.weights_stamp())


def synthetic_panel(real: FashionData | None) -> None:
    """The whole view; real: the training images to show beside the generated ones (None without the data)."""
    generators = gan.list_generators()
    if not generators:
        st.info("No generator yet: train one below, or from a terminal with "
                "`python -m fashion_core gan train runs/gans/mine`.")
    else:
        options = {r.name + (" (shipped)" if r.shipped else ""): r for r in generators}
        picked = options[st.selectbox("Generator", list(options), key="ds.gan", persist_state="session")]
        try:
            gen = generator_for(picked)
        except ValueError as exc:  # not a plain weights file: refused, nothing run
            st.error(f"{picked.name} cannot be loaded: {exc}")
        else:
            grids(gen, real)
            walk(gen)
            quality(picked)
    with st.expander("Train a generator", icon=":material/model_training:", expanded=not generators):
        train_form(real is not None)
        gan_jobs()


def grids(gen: gan.Generator, real: FashionData | None) -> None:
    """Per class a row of generated images, with the classifier's probability of that class under each,
    and a row of real ones of the class beside it."""
    c1, c2, c3 = st.columns([1, 1, 2])
    per_class = c1.slider("Images per class", 4, 12, 8, key="ds.gan_n", persist_state="session")
    st.session_state.setdefault("ds.gan_seed", 0)
    if c3.button("Redraw", icon=":material/casino:", help="New noise: other images of the same classes"):
        st.session_state["ds.gan_seed"] += 1
    seed = int(c2.number_input("Seed", 0, 1_000_000, key="ds.gan_seed", persist_state="session"))
    labels = gan.per_class(per_class)
    images = gan.generate(gen, labels, seed=seed)
    judge = Run(default_classifier())
    if judge.has_weights:
        confidence = _confidence(images.numpy().tobytes(), len(images), str(judge.path))
        sure = confidence[np.arange(len(labels)), labels.numpy()].reshape(len(CLASSES), per_class)
        st.caption(f"Under each generated image: how sure the shipped classifier ({judge.name}) is that it shows its "
                   "class; ✗: under 50%.")
    else:  # no shipped classifier here
        sure = np.full((len(CLASSES), per_class), np.nan)
    head_l, head_r = st.columns(2)
    head_l.markdown("**Generated**")
    head_r.markdown("**Real** (training images)" if real is not None else "**Real**: once Fashion-MNIST is downloaded")
    for c, name in enumerate(CLASSES):
        st.markdown(f"**{name}**")
        left, right = st.columns(2)
        row = images[c * per_class:(c + 1) * per_class].numpy()
        left.image([upscale(im, 2) for im in row], width=TILE,
                   caption=["" if np.isnan(p) else f"{p:.0%}" + ("" if p >= 0.5 else " ✗") for p in sure[c]])
        if real is not None:
            of_class = torch.nonzero(real.labels == c).flatten()
            start = seed * per_class % (len(of_class) - per_class)  # another seed, other real images too
            right.image([upscale(real.images[i].numpy(), 2) for i in of_class[start:start + per_class]], width=TILE)


@st.cache_data(max_entries=16, show_spinner=False)
def _confidence(image_bytes: bytes, n: int, classifier: str) -> np.ndarray:
    """The classifier run's class probabilities for n generated images (given as their bytes)."""
    images = torch.frombuffer(bytearray(image_bytes), dtype=torch.uint8).view(n, 28, 28)
    return infer(common.model_for(Run(Path(classifier))), images).softmax(1).numpy()


def walk(gen: gan.Generator) -> None:
    """A straight line between two latent points, for one class."""
    st.subheader("Between two latent points")
    c1, c2, c3 = st.columns(3)
    label = c1.selectbox("Class", CLASSES, key="ds.gan_walk_class", persist_state="session")
    a = int(c2.number_input("Start seed", 0, 1_000_000, 1, key="ds.gan_walk_a", persist_state="session"))
    b = int(c3.number_input("End seed", 0, 1_000_000, 2, key="ds.gan_walk_b", persist_state="session"))
    steps = gan.interpolate(gen, CLASSES.index(label), a, b, steps=10)
    st.image(upscale(contact_sheet(steps.numpy(), columns=10), 2),
             caption=f"{label}: from seed {a}'s point (left) to seed {b}'s (right), in 10 equal steps")


def quality(run: Run) -> None:
    """The run's quality.json, or how to make it."""
    st.subheader("Measured quality")
    q = read_json(run.path / "quality.json")
    if not isinstance(q, dict) or "agreement_per_class" not in q:
        st.caption(f"Not measured yet: `python -m fashion_core gan quality {run.path}` (about a minute).")
        return
    c1, c2, c3 = st.columns(3)
    c1.metric("Class agreement", f"{q['agreement']:.1f}%", help=f"goal ≥ {GOALS['agreement']}%: the share of images "
              f"generated for a class that {q['classifier']} calls that class")
    c2.metric("Fréchet distance", f"{q['frechet_distance']:.2f}", f"{q['fd_over_floor']:.1f}× the floor",
              delta_color="off", help=f"in {q['classifier']}'s penultimate features, against the test images; the "
              f"floor (real training vs test images) is {q['frechet_floor']:.2f}; goal ≤ {GOALS['fd_over_floor']}×")
    c3.metric("Diversity (worst class)", f"{q['diversity']:.2f}", help="spread of a class's generated images over "
              f"the spread of its real ones; near 0 = one image repeated; goal ≥ {GOALS['diversity']}")
    fig = go.Figure([go.Bar(x=CLASSES, y=list(q["agreement_per_class"].values()), name="agreement %")])
    fig.add_hline(GOALS["agreement"], line_dash="dot", annotation_text="goal")
    fig.update_layout(height=300, yaxis_title="class agreement (%)", yaxis_range=[0, 100], margin=dict(t=20))
    st.plotly_chart(fig, width="stretch")
    st.caption(f"{q['images']:,} generated images, measured by `python -m fashion_core gan quality`.")


def train_form(data_ready: bool) -> None:
    """The settings of a new generator, and Start: it queues a job like the Train page's."""
    helps = field_help(GanConfig)
    with st.form("ds.gan_form"):
        c1, c2, c3, c4 = st.columns(4)
        epochs = c1.number_input("Epochs", 1, 1000, 10, help=helps["epochs"])
        subset = c2.number_input("Training images (0 = all)", 0, 60_000, 0, step=1000, help=helps["train_subset"])
        width = c3.number_input("Generator width", 4, 256, GanConfig.g_width, help=helps["g_width"])
        seed = c4.number_input("Seed", 0, 2**31, 0, help=helps["seed"])
        start = st.form_submit_button("Start training the generator", type="primary", disabled=not data_ready)
    if not data_ready:
        st.caption("A generator learns from Fashion-MNIST: download it above first.")
    if start:
        cfg = GanConfig(epochs=int(epochs), train_subset=int(subset), g_width=int(width), seed=int(seed))
        try:
            job = jobs.submit_gan(cfg)
        except (ValueError, jobs.QueueError) as exc:  # DuplicateJob is a ValueError: a second click or tab
            st.warning(str(exc))
        else:
            st.toast(f"Queued job {job.id}: its samples appear below after each epoch.")


@st.fragment(run_every=2)
def gan_jobs() -> None:
    """Every generator job: progress, the latest epoch's samples, Cancel and Resume; redrawn every 2 s."""
    listed = [j for j in jobs.list_jobs() if j.kind == "gan"]
    for job in listed:
        s = job.state.get("state", "unknown")
        with st.expander(f"{job.id} · **{s}**", expanded=s in jobs.ACTIVE):
            if s == "failed":
                st.error(job.state.get("error", "failed"))
            latest = job.progress.get("latest", {})
            if s in ("running", "starting") and latest.get("total_steps"):
                st.progress(min(latest.get("step", 0) / latest["total_steps"], 1.0),
                            f"epoch {latest.get('epoch')}/{latest.get('epochs')} · D loss {latest.get('d_loss', 0):.3f}"
                            f" · G loss {latest.get('g_loss', 0):.3f} · {latest.get('images_per_s', 0):,.0f} images/s")
            if s in jobs.ACTIVE and not job.cancel_requested and st.button("Cancel", key=f"gan-cancel-{job.id}"):
                jobs.cancel(job)
            if jobs.resumable(job, listed) and st.button("Resume", key=f"gan-resume-{job.id}"):
                try:
                    jobs.resume(job)
                except (ValueError, jobs.QueueError) as exc:
                    st.warning(str(exc))
            epoch_grids(job)


def epoch_grids(job: jobs.Job) -> None:
    """The job's sample grids, one per epoch, with a slider through them (the same noise each epoch)."""
    run_dir = job.state.get("run_dir")
    grids_ = gan.sample_grids(Run(Path(run_dir))) if run_dir else []
    if not grids_:
        st.caption("Sample grids appear here after each epoch.")
        return
    at = st.select_slider("Epoch", range(1, len(grids_) + 1), len(grids_), key=f"gan-epoch-{job.id}") \
        if len(grids_) > 1 else 1
    st.image(str(grids_[at - 1]), width=280, caption=f"epoch {at}: a row per class, the same noise every epoch")
