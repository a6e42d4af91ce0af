"""Predict & Explain: a photo, the camera or a test image -> preprocessing strip, top-k
probabilities for several models, and Captum attributions (one image or a whole class)."""
import numpy as np
import streamlit as st

from fashion_core.data import CLASSES
from fashion_core.photos.selection import best_for_photos, tuned_on_photos
from ui import common, photo_input
from ui.attribution import attribution_panel
from ui.prediction import answer_for, show_answer, top_k_charts

common.require_router()

st.title("Predict & explain")
runs = common.finished_runs(with_weights=True)
if not runs:
    common.no_runs_message()
    st.stop()
by_name = common.by_key(runs)
c1, c2 = st.columns([2, 1])
names = list(by_name)  # best test accuracy first; the default is the one best for photos
common.from_url("pr.run", names, common.key_of(by_name, best_for_photos(runs)))
run = by_name[c1.selectbox("Model", names, key="pr.run", persist_state="session",
                           format_func=lambda n: common.run_label(by_name[n]),
                           help="Runs fine-tuned on real photos (photo_dir in their config), and votes of such runs, "
                                "classify uploads best; the others are best on Fashion-MNIST's own images. The "
                                "default is the photo-tuned run whose unsure threshold did best on labelled photos "
                                "it never learned from.")]
common.to_url("pr.run")
mode = c2.radio("Mode", ["Explain one image", "Explain a class"], key="pr.mode", bind="query-params", horizontal=True,
                persist_state="session")
try:
    model = common.model_for(run)
except ValueError as exc:  # not a plain weights file, or weights that do not fit the model
    st.error(f"This run's checkpoint was refused: {exc}")
    st.stop()

if mode == "Explain one image":
    sources = ["Upload a photo", "Camera"] + (["Test image"] if common.data_ready() else [])
    source = st.radio("Input", sources, horizontal=True, key="pr.source", bind="query-params", persist_state="session")
    if source == "Test image":
        image28, steps, photo = photo_input.test_image(common.split(False))
    else:
        image28, steps, photo = photo_input.photo(source)
    if image28 is None:
        st.info("Upload a photo of a garment above." if source == "Upload a photo" else
                "Take a photo with the camera above (the browser asks for permission first).")
        st.stop()
    photo_input.steps_strip(steps, is_test_image=source == "Test image")
    answer = answer_for(run, image28)
    show_answer(answer, run.name)
    k = st.slider("Top k", 1, 10, 5, key="pr.k", persist_state="session")
    rest = [n for n, r in by_name.items() if r.path != run.path]
    # a photo is compared with nothing until asked: older photo runs can be confidently wrong where the
    # default is right or unsure. A test image with the most accurate runs trained on Fashion-MNIST alone.
    plain = [n for n in rest if not tuned_on_photos(by_name[n])]
    others = st.multiselect("Compare with", rest, key="pr.others", persist_state="session",
                            default=plain[:2] if source == "Test image" else [],
                            format_func=lambda n: common.run_label(by_name[n]),
                            help="Other runs' answers for the same image, each unsure by its own threshold.")
    top_k_charts(answer, run.name, {n: by_name[n] for n in others}, image28, k)
    st.subheader("Attributions")
    # a fixed label: a label that changes with the answer is left stale in the closed box by the browser
    choice = st.selectbox("Explain the class", ["predicted"] + CLASSES, key="pr.target", persist_state="session",
                          format_func=lambda c: "the predicted class" if c == "predicted" else c)
    target = answer["index"] if choice == "predicted" else CLASSES.index(choice)
    st.caption(f"The maps below explain **{CLASSES[target]}**" + (
        " (the likeliest class of an unsure answer)." if choice == "predicted" and answer["unsure"] else "."))
    attribution_panel(run, model, np.asarray(image28), np.asarray(image28), target, photo=photo)
else:
    if not common.data_ready():
        common.data_panel()
        st.stop()
    test = common.split(False)
    c1, c2 = st.columns(2)
    cls = CLASSES.index(c1.selectbox("Class", CLASSES, key="pr.class", persist_state="session"))
    n = c2.slider("Test images to average over", 4, 128, 32, step=4, key="pr.n", persist_state="session")
    idx = (test.labels == cls).nonzero().flatten()[:n]
    images = test.images[idx].numpy()
    mean_img = images.mean(0).round().astype(np.uint8)
    st.image(mean_img, caption=f"mean of {len(idx)} test images of {CLASSES[cls]}", width=140)
    attribution_panel(run, model, images, mean_img, cls, many=True)
