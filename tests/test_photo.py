"""The photo pipeline on photos the tests draw: a garment on a cluttered floor, EXIF rotation and
every odd mode (CMYK, 16-bit, RGBA, palette, animated GIF). Each step keeps its contract: the
shape it promises, a black background, the garment centred and filling the frame as in Fashion-MNIST."""
from __future__ import annotations

import io
import os
import time

import cv2
import numpy as np
import pytest
from PIL import Image

from conftest import real_data_root
from fashion_core.photos import pipeline as photo
from fashion_core.photos.pipeline import ImageError, load_image, prepare

# a T-shirt outline in unit coordinates (x, y), y down: neck, shoulders, short sleeves, hem
TSHIRT = [(0.38, 0.0), (0.2, 0.05), (0.0, 0.25), (0.1, 0.38), (0.22, 0.3), (0.22, 1.0), (0.78, 1.0),
          (0.78, 0.3), (0.9, 0.38), (1.0, 0.25), (0.8, 0.05), (0.62, 0.0), (0.5, 0.08)]
TROUSER = [(0.0, 0.0), (1.0, 0.0), (1.0, 1.0), (0.58, 1.0), (0.5, 0.2), (0.42, 1.0), (0.0, 1.0)]
SHOE = [(0.0, 0.55), (0.45, 0.35), (0.55, 0.0), (0.8, 0.0), (1.0, 0.6), (1.0, 1.0), (0.0, 1.0)]


def draw(outline, box: tuple[int, int, int, int], size: tuple[int, int]) -> np.ndarray:
    """(h, w) bool: the outline scaled into box (x0, y0, x1, y1) on a frame of size (w, h)."""
    x0, y0, x1, y1 = box
    pts = np.array([(x0 + x * (x1 - x0 - 1), y0 + y * (y1 - y0 - 1)) for x, y in outline], np.int32)
    mask = np.zeros(size[::-1], np.uint8)
    cv2.fillPoly(mask, [pts], 1)
    return mask.astype(bool)


def cluttered_tshirt(size=(320, 400), box=(30, 90, 210, 330), seed: int = 0) -> tuple[Image.Image, np.ndarray]:
    """A navy T-shirt with a red print, off-centre on a wooden floor with two small objects.

    size (w, h) of the frame, box (x0, y0, x1, y1) of the shirt. Returns the photo and its (h, w)
    bool garment mask.
    """
    rng = np.random.default_rng(seed)
    w, h = size
    yy, xx = np.mgrid[:h, :w]
    grain = 14 * np.sin(yy / 7.0 + 2 * np.sin(xx / 40.0))[..., None]  # wood grain stripes
    floor = np.array([200, 165, 120]) + grain + rng.normal(0, 6, (h, w, 3))
    floor += (np.linspace(-20, 20, w)[None, :, None])  # uneven light
    truth = draw(TSHIRT, box, (w, h))
    img = np.where(truth[..., None], np.array([35, 45, 95]) + rng.normal(0, 5, (h, w, 3)), floor)
    x0, y0, x1, y1 = box
    px, py = (x1 - x0) / 180, (y1 - y0) / 240
    img[y0 + round(90 * py): y0 + round(125 * py), x0 + round(65 * px): x0 + round(115 * px)] = (200, 60, 60)
    # ^ a print on the chest: a hole the mask must fill
    cv2.circle(img, (w - 45, 45), 9, (60, 60, 60), -1)  # a coin and a bottle cap: clutter, not garment
    cv2.circle(img, (w - 55, h - 30), 7, (40, 120, 40), -1)
    return Image.fromarray(np.clip(img, 0, 255).astype(np.uint8)), truth


def plain(outline, mode: str = "RGB", size=(150, 200), box=(25, 20, 125, 180)) -> Image.Image:
    """A dark garment on a light, plain background, in any PIL mode."""
    arr = np.full(size[::-1], 225, np.uint8)
    arr[draw(outline, box, size)] = 40
    return Image.fromarray(arr).convert(mode)


def encode(img: Image.Image, fmt: str = "PNG", **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format=fmt, **kw)
    return buf.getvalue()


def content_box(image28: np.ndarray, level: int = 20) -> tuple[int, int, int, int]:
    """(x0, y0, x1, y1) of pixels brighter than level, exclusive ends."""
    ys, xs = np.nonzero(image28 > level)
    return xs.min(), ys.min(), xs.max() + 1, ys.max() + 1


def assert_like_fashion_mnist(image28: np.ndarray, tall: bool) -> None:
    """Fashion-MNIST framing: longest side spans (almost) all 28 pixels, box centred, black corners."""
    assert image28.shape == (28, 28) and image28.dtype == np.uint8
    x0, y0, x1, y1 = content_box(image28)
    w, h = x1 - x0, y1 - y0
    assert max(w, h) >= 27, (w, h)
    assert (h > w) == tall, (w, h)
    assert abs((x0 + x1) / 2 - 14) <= 1.0 and abs((y0 + y1) / 2 - 14) <= 1.0, (x0, y0, x1, y1)


def test_garment_on_cluttered_floor_every_step_keeps_its_contract():
    img, truth = cluttered_tshirt()
    p = prepare(img)
    names = [n for n, _ in p.steps]
    assert names == ["upright", "greyscale", "garment mask", "inverted on black", "cropped to garment",
                     "centred square", "28x28"]
    steps = dict(p.steps)
    rgb = steps["upright"]
    h, w = rgb.shape[:2]
    assert rgb.shape == (256, 205, 3) and rgb.dtype == np.uint8  # longer side WORK_SIDE, aspect kept
    assert steps["greyscale"].shape == (h, w) and steps["garment mask"].shape == (h, w, 3)
    assert p.found and p.mask.shape == (h, w)

    # background handling: the mask is the garment, print included, clutter excluded
    small_truth = cv2.resize(truth.astype(np.uint8), (w, h), interpolation=cv2.INTER_NEAREST).astype(bool)
    iou = (p.mask & small_truth).sum() / (p.mask | small_truth).sum()
    assert iou > 0.9, iou
    garment = steps["inverted on black"]
    assert garment.shape == (h, w) and garment[~p.mask].max() == 0  # background black
    inside = garment[p.mask].astype(float)
    assert abs(inside.mean() - photo.TARGET_MEAN) < 15  # contrast matched to Fashion-MNIST garments
    assert inside.min() >= photo.FLOOR - 1  # a navy shirt is bright, as Fashion-MNIST's negatives

    # crop to the garment, then a centred square
    x0, y0, x1, y1 = p.box
    assert steps["cropped to garment"].shape == (y1 - y0, x1 - x0)
    square = steps["centred square"]
    assert square.shape == (y1 - y0, y1 - y0)  # a T-shirt is taller than wide: height is the side
    assert square[:, :2].max() == 0 and square[:, -2:].max() == 0  # side bands are padding

    assert steps["28x28"] is p.image28
    assert_like_fashion_mnist(p.image28, tall=True)
    assert p.image28[:4, :4].max() < 20 and p.image28[:4, -4:].max() < 20  # beside the neck: black


def test_output_does_not_depend_on_where_the_garment_lies_in_the_frame():
    """Crop and centring remove position and scale: the same shirt moved and shrunk gives the same 28x28."""
    a = prepare(cluttered_tshirt()[0]).image28.astype(float)
    b = prepare(cluttered_tshirt((480, 560), (250, 200, 400, 400), seed=1)[0]).image28.astype(float)
    assert np.corrcoef(a.ravel(), b.ravel())[0, 1] > 0.9


def test_exif_rotation_is_undone_before_anything_else():
    upright = plain(TROUSER)
    stored = upright.rotate(90, expand=True)  # what a phone held sideways writes
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 clockwise to display"
    data = encode(stored, "JPEG", exif=exif.tobytes(), quality=95)
    img = load_image(data)
    assert img.size == upright.size and img.mode == "RGB"
    p = prepare(img)
    assert_like_fashion_mnist(p.image28, tall=True)  # trousers stand up; ignoring EXIF lays them down
    legs = p.image28[20:, :].astype(float)
    assert legs[:, 13:15].mean() < legs[:, 8:11].mean() / 2  # the gap between the legs is at the bottom


def _transparent_tshirt() -> Image.Image:
    """Garment opaque, background transparent over black: only compositing on white reveals it."""
    rgba = np.zeros((200, 160, 4), np.uint8)
    m = draw(TSHIRT, (10, 10, 150, 190), (160, 200))
    rgba[m] = (40, 40, 60, 255)
    return Image.fromarray(rgba, "RGBA")


def _animated() -> bytes:
    frames = [plain(TROUSER, "P"), plain(SHOE, "P", box=(10, 60, 140, 140))]
    return encode(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)


ODD = {
    "CMYK JPEG": (lambda: encode(plain(TROUSER, "CMYK"), "JPEG", quality=95), True),
    "16-bit PNG": (lambda: encode(Image.fromarray(np.asarray(plain(TROUSER, "L"), np.uint16) * 257)), True),
    "RGBA PNG": (lambda: encode(_transparent_tshirt()), True),
    "palette PNG": (lambda: encode(plain(SHOE, "P", box=(10, 60, 140, 140))), False),
    "greyscale WEBP": (lambda: encode(plain(SHOE, "L", box=(10, 60, 140, 140)), "WEBP", lossless=True), False),
    "animated GIF": (_animated, True),  # the first frame (trousers), not the second (a shoe)
}


@pytest.mark.parametrize("name", ODD)
def test_odd_modes_become_rgb_and_give_a_framed_garment(name):
    make, tall = ODD[name]
    img = load_image(make())
    assert img.mode == "RGB"
    p = prepare(img)
    assert p.found
    assert_like_fashion_mnist(p.image28, tall=tall)
    if name == "16-bit PNG":
        assert Image.open(io.BytesIO(make())).mode.startswith("I")  # really a 16-bit file


def test_unreadable_input_raises_image_error_with_a_reason():
    for data, reason in ((b"", "empty"), (b"plain text, not pixels" * 10, "not a supported image"),
                         (encode(plain(TROUSER))[:150], "damaged")):
        with pytest.raises(ImageError, match=reason):
            load_image(data)


def test_blank_tiny_or_transparent_pictures_are_refused_with_a_reason():
    clear = Image.new("RGBA", (80, 80), (0, 0, 0, 0))  # fully transparent: white once composited
    for img, reason in ((Image.new("RGB", (120, 90), (250, 250, 250)), "one flat colour"),
                        (clear, "one flat colour"), (Image.new("RGB", (1, 1), (10, 200, 30)), "too small"),
                        (plain(TROUSER).resize((12, 16)), r"too small \(12x16 pixels")):
        with pytest.raises(ImageError, match=reason):
            load_image(encode(img))
    noisy = np.full((90, 120, 3), 250, np.uint8)
    noisy[5::30, 7::40] = 0  # nine stray dark pixels on a white card: still a blank card
    with pytest.raises(ImageError, match="one flat colour"):
        load_image(encode(Image.fromarray(noisy)))


def test_a_frame_with_no_garment_still_gives_an_input():
    p = prepare(Image.new("RGB", (120, 90), (128, 128, 128)))
    assert p.image28.shape == (28, 28) and p.image28.dtype == np.uint8


def test_naive_baseline_squashes_and_inverts():
    out = photo.naive(plain(SHOE, box=(10, 60, 140, 140)))
    assert out.shape == (28, 28) and out[0].mean() < 50 and out[17, 14] > 150  # light border -> inverted


def test_fit28_fills_the_longest_side_and_centres_the_short_one():
    garment = np.zeros((300, 200), np.uint8)
    garment[50:250, 60:160] = 200  # a 100 x 200 box
    out = photo.fit28(garment, photo.garment_box(garment > 0))
    x0, y0, x1, y1 = content_box(out)
    assert (y0, y1) == (0, 28) and abs((x0 + x1) / 2 - 14) <= 0.5 and 13 <= x1 - x0 <= 15


@pytest.mark.skipif(real_data_root() is None, reason="needs the real Fashion-MNIST (FASHION_MNIST_ROOT)")
def test_a_fashion_mnist_image_printed_as_a_product_photo_comes_back():
    """Round trip: a test image, un-negated, enlarged onto a light backdrop off-centre, goes through
    the pipeline and must come back close to the original (same framing, same shape)."""
    from fashion_core.data import load_split

    test = load_split(False, real_data_root())
    scores = []
    for i in range(8):
        x = test.images[i].numpy()
        shot = 255 - cv2.resize(x, (224, 224), interpolation=cv2.INTER_CUBIC)
        frame = np.full((360, 420), 250, np.uint8)
        frame[100:324, 40:264] = shot
        out = prepare(Image.fromarray(frame).convert("RGB")).image28
        scores.append(np.corrcoef(out.ravel().astype(float), x.ravel().astype(float))[0, 1])
    assert np.median(scores) > 0.8, scores


def test_the_uploader_states_the_same_size_limit_the_pipeline_applies():
    import tomllib
    from pathlib import Path

    from fashion_core.photos.pipeline import MAX_BYTES

    config = tomllib.loads((Path(__file__).resolve().parent.parent / ".streamlit" / "config.toml").read_text())
    assert config["server"]["maxUploadSize"] * 2**20 == MAX_BYTES


def test_the_second_grabcut_started_early_gives_the_same_input_as_running_it_after_the_first(monkeypatch):
    """The fallback GrabCut may start on another core before the first one ends (photo.SPECULATE_BELOW):
    every photo gets the same mask and 28x28 as with the two in turn, whether the fallback was needed or not."""
    tees = [cluttered_tshirt(seed=s, box=box)[0] for s, box in enumerate([(30, 90, 210, 330), (120, 150, 200, 260)])]
    frames = [*tees, plain(TSHIRT), Image.new("RGB", (120, 90), (128, 128, 128)),
              Image.fromarray(np.tile(np.linspace(0, 255, 160, dtype=np.uint8), (120, 1)))]  # a grey ramp
    calls = []
    grabcut = photo._grabcut
    monkeypatch.setattr(photo, "_grabcut", lambda *a: calls.append(len(a) > 3) or grabcut(*a))
    outputs = {}
    for speculate in (0.0, 1.01):  # never / always started early
        monkeypatch.setattr(photo, "SPECULATE_BELOW", speculate)
        outputs[speculate] = [prepare(img) for img in frames]
    assert any(calls) and not all(calls)  # both ways ran
    for seq, early in zip(outputs[0.0], outputs[1.01]):
        assert (seq.mask == early.mask).all() and (seq.image28 == early.image28).all() and seq.found == early.found
    assert sum(not p.found for p in outputs[0.0]) >= 1  # a frame where both tries failed: the centre is used


def test_nearest_border_colour_distance_is_the_plain_formula():
    rng = np.random.default_rng(0)
    for shape in [(1, 3), (7, 3), (40, 30, 3)]:
        points, centres = rng.normal(50, 30, shape).astype(np.float32), rng.normal(50, 30, (4, 3)).astype(np.float32)
        plain_formula = np.linalg.norm(points[..., None, :] - centres, axis=-1).min(-1)
        assert (photo.nearest(points, centres) == plain_formula).all()


@pytest.mark.skipif(not hasattr(os, "fork"), reason="fork is POSIX")
def test_a_forked_child_still_segments_a_photo_that_needs_the_second_grabcut(monkeypatch):
    """The early second GrabCut runs on a thread of the process's own; a forked child (a data loader worker, say)
    has none of its parent's threads and must not wait forever on one."""
    monkeypatch.setattr(photo, "SPECULATE_BELOW", 1.01)
    frame = Image.new("RGB", (120, 90), (128, 128, 128))
    expected = prepare(frame).image28  # the parent's thread exists now
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: answer through the pipe, then leave at once
        try:
            os.write(write, prepare(frame).image28.tobytes())
        finally:
            os._exit(0)
    os.close(write)
    deadline = time.time() + 30
    while os.waitpid(pid, os.WNOHANG) == (0, 0):
        if time.time() > deadline:
            os.kill(pid, 9)
            pytest.fail("the forked child hung on the parent's GrabCut thread")
        time.sleep(0.05)
    got = os.read(read, 28 * 28)
    assert np.frombuffer(got, np.uint8).reshape(28, 28).tolist() == expected.tolist()
