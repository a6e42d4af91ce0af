"""The Predict page's input: a test image, or an uploaded or camera photo made Fashion-MNIST-like
(refused with a reason when it cannot be) with the photo the maps are drawn on, and the strip of its
preprocessing steps."""
from __future__ import annotations

import numpy as np
import streamlit as st

from fashion_core.data import CLASSES, FashionData
from fashion_core.photos.pipeline import NOT_FOUND, ImageError, centre_square, load_image, prepare, working_copy

Steps = list[tuple[str, np.ndarray]]  # (caption, image) per preprocessing step
Photo = tuple[np.ndarray, tuple[int, int, int, int]]  # (h, w, 3) working copy and the garment box the input came from


def test_image(test: FashionData) -> tuple[np.ndarray, Steps, None]:
    """A test image picked by its index (kept in the URL): the image, its one "step" and no photo."""
    i = st.number_input(f"Test image index (0–{len(test) - 1})", 0, len(test) - 1, 0, key="pr.index",
                        bind="query-params", persist_state="session")
    return test.images[i].numpy(), [(f"test #{i}: {CLASSES[test.labels[i]]}", test.images[i].numpy())], None


@st.cache_data(max_entries=32, show_spinner="Finding the garment…")
def _prepared(data: bytes):
    """Decode and segment once per uploaded file, not on every widget change (ImageError is not cached):
    the Prepared and the working copy it was made from (what the attributions are drawn on)."""
    img = load_image(data)
    return prepare(img), working_copy(img)


def _forget_upload() -> None:
    """The user removed the uploaded photo (not a page change): forget it."""
    if st.session_state.get("pr.upload") is None:
        st.session_state.pop("pr.last_upload", None)


def photo(source: str) -> tuple[np.ndarray | None, Steps, Photo | None]:
    """An uploaded photo (source "Upload a photo") or the camera's, prepared: the 28×28 image, each
    step and the photo with its garment box, or (None, [], None) while there is none. A file that
    cannot be used is refused on the page, which stops there."""
    f = (st.file_uploader("Photo of a garment", type=["jpg", "jpeg", "png", "webp", "bmp", "gif"], key="pr.upload",
                          on_change=_forget_upload)
         if source == "Upload a photo" else st.camera_input("Take a photo", key="pr.camera"))
    data = f.getvalue() if f is not None else None
    if source == "Upload a photo":
        # an uploader comes back empty after a visit to another page: keep the last photo until it is removed
        if data is not None:
            st.session_state["pr.last_upload"] = (f.name, data)
        elif "pr.last_upload" in st.session_state:
            name, data = st.session_state["pr.last_upload"]
            st.caption(f"Showing your last upload, **{name}**; upload another photo to replace it.")
            if st.button("Forget this photo", key="pr.forget"):
                del st.session_state["pr.last_upload"]
                st.rerun()
    if data is None:
        return None, [], None
    try:
        prepared, rgb = _prepared(data)
    except ImageError as exc:
        st.error(f"Cannot use this file: {exc}")
        st.stop()
    except Exception as exc:  # noqa: BLE001 - never a traceback on the page
        st.error(f"Cannot use this file: unexpected {type(exc).__name__} while reading it ({exc})")
        st.stop()
    if not prepared.found:
        st.info(f"{NOT_FOUND}. A plain background or a tighter crop helps.")
    return prepared.image28, prepared.steps, (rgb, prepared.box)


def steps_strip(steps: Steps, is_test_image: bool) -> None:
    """What the model sees, step by step (a test image needs none)."""
    if is_test_image:
        st.markdown("**The test image** — already 28×28 and Fashion-MNIST-like, so no preprocessing")
    else:
        st.markdown("**Preprocessing** — what the model sees, step by step")
    st.image([centre_square(s) for _, s in steps], caption=[n for n, _ in steps], width=110)
