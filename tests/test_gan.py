"""The class-conditional GAN: its networks, a tiny training run that resumes exactly, the quality
measurement, synthetic images in a classifier's batches, GAN jobs and the Dataset page's Synthetic view."""
from __future__ import annotations

import json
import shutil

import pytest
import torch
from apptest import empty, fresh_caches, open_tab, ready, start, text_of  # noqa: F401 (fixtures)
from test_jobs import wait_for

import fashion_core.runs as fruns
from fashion_core import gan, jobs
from fashion_core.config import ConfigError, GanConfig, TrainConfig
from fashion_core.gan_quality import measure, report_lines
from fashion_core.models.gan import Discriminator, Generator
from fashion_core.runs import Run, load_checkpoint

TINY = GanConfig(latent_dim=8, g_width=4, d_width=4, epochs=2, batch_size=16, train_subset=64, device="cpu")


@pytest.fixture(scope="module")
def tiny_gan(tmp_path_factory, fake_root) -> Run:
    return gan.train_gan(TINY, tmp_path_factory.mktemp("gans") / "tiny", data_root=fake_root)


def test_networks_shapes_conditioning_and_no_nan():
    torch.manual_seed(0)
    gen, disc = Generator(16, 8), Discriminator(8)
    z = torch.randn(6, 16)
    y = torch.tensor([0, 1, 2, 3, 4, 9])
    images = gen(z, y)
    assert images.shape == (6, 1, 28, 28) and images.abs().max() <= 1 and not images.isnan().any()
    # the class steers the image: the same noise under another class gives another image
    assert not torch.allclose(gen(z, y), gen(z, torch.zeros_like(y)))
    scores = disc(images, y)
    assert scores.shape == (6,) and not scores.isnan().any()
    assert not torch.allclose(disc(images, y), disc(images, (y + 1) % 10))  # the projection reads the class


def test_tiny_gan_run_is_loadable_and_rebuilt_from_its_config(tiny_gan):
    assert tiny_gan.status["state"] == "done" and tiny_gan.kind == "gan"
    assert json.loads((tiny_gan.path / "config.json").read_text())["kind"] == "gan"
    assert [r["epoch"] for r in tiny_gan.metrics] == [1, 2]
    assert all(not torch.tensor(r["d_loss"]).isnan() for r in tiny_gan.metrics)
    assert [p.name for p in gan.sample_grids(tiny_gan)] == ["epoch-001.png", "epoch-002.png"]
    load_checkpoint(tiny_gan.path / "best.pt")  # weights_only=True: plain tensors only
    gen = gan.load_generator(tiny_gan)
    images = gan.generate(gen, gan.per_class(3), seed=5)
    assert images.shape == (30, 28, 28) and images.dtype == torch.uint8
    assert torch.equal(images, gan.generate(gen, gan.per_class(3), seed=5))  # a seed redraws the same images
    assert gan.sample_grid(gen, 4).shape == (280, 112)
    assert gan.interpolate(gen, 3, 1, 2, steps=5).shape == (5, 28, 28)


def test_a_cancelled_gan_run_resumes_to_the_same_weights(tmp_path, fake_root, tiny_gan):
    calls = {"n": 0}

    def stop_midway() -> bool:
        calls["n"] += 1
        return calls["n"] == 3  # within the first epoch

    run = gan.train_gan(TINY, tmp_path / "stopped", should_stop=stop_midway, data_root=fake_root)
    assert run.status["state"] == "cancelled" and (run.path / "last.pt").exists()
    run = gan.train_gan(TINY, tmp_path / "stopped", data_root=fake_root)
    assert run.status["state"] == "done" and [r["epoch"] for r in run.metrics] == [1, 2]
    ours, straight = load_checkpoint(run.path / "best.pt"), load_checkpoint(tiny_gan.path / "best.pt")
    assert all(torch.allclose(ours["generator"][k], v) for k, v in straight["generator"].items())


def test_a_finished_gan_run_given_more_epochs_goes_on_as_if_planned_longer(tmp_path, fake_root, tiny_gan):
    longer = TINY.replace(epochs=3)
    straight = gan.train_gan(longer, tmp_path / "straight", data_root=fake_root)
    extended = gan.train_gan(longer, shutil.copytree(tiny_gan.path, tmp_path / "extended"), data_root=fake_root)
    assert [r["epoch"] for r in extended.metrics] == [1, 2, 3] and extended.config.epochs == 3
    ours, theirs = load_checkpoint(extended.path / "best.pt"), load_checkpoint(straight.path / "best.pt")
    assert all(torch.allclose(ours["generator"][k], v) for k, v in theirs["generator"].items())
    with pytest.raises(ValueError, match="different config"):  # anything else changed is another run
        gan.train_gan(longer.replace(lr_g=1e-3, epochs=4), extended.path, data_root=fake_root)
    with pytest.raises(ValueError, match="different config"):  # ... and so is fewer epochs
        gan.train_gan(TINY.replace(epochs=1), extended.path, data_root=fake_root)


def test_bad_gan_settings_are_refused_naming_the_field(tmp_path, fake_root):
    with pytest.raises(ConfigError, match="g_width"):
        gan.train_gan(TINY.replace(g_width=0), tmp_path / "bad", data_root=fake_root)
    assert not (tmp_path / "bad").exists()
    with pytest.raises(ValueError, match="unknown GAN config field"):
        GanConfig.from_dict({"lr": 0.1})


def test_quality_measures_agreement_distance_and_diversity(tiny_gan, tiny_run, fake_root):
    q = measure(tiny_gan, tiny_run, n=100, data_root=fake_root)
    assert json.loads((tiny_gan.path / "quality.json").read_text()) == q
    assert q["images"] == 100 and 0 <= q["agreement"] <= 100 and len(q["agreement_per_class"]) == 10
    assert q["frechet_distance"] >= 0 and q["frechet_floor"] >= 0 and q["diversity"] >= 0
    assert any("class agreement" in line for line in report_lines(q))


def test_quality_catches_a_generator_that_repeats_one_image(tiny_gan, tiny_run, fake_root, tmp_path):
    copy = Run(shutil.copytree(tiny_gan.path, tmp_path / "collapsed"))
    ck = load_checkpoint(copy.path / "best.pt")
    ck["generator"]["fc.weight"].zero_()  # the noise no longer reaches the image: one image per class
    torch.save(ck, copy.path / "best.pt")
    q = measure(copy, tiny_run, n=100, data_root=fake_root)
    assert q["diversity"] < 0.05 and not q["goals_met"]["diversity"]


def test_a_classifier_trains_with_synthetic_images(tiny_gan, tiny_config, fake_root, tmp_path):
    from fashion_core.train import train

    for mode in ("random", "difficult"):
        cfg = tiny_config.replace(epochs=1, synthetic_from=str(tiny_gan.path), synthetic_fraction=0.5,
                                  synthetic_mode=mode)
        run = train(cfg, tmp_path / mode, data_root=fake_root)
        assert run.status["state"] == "done" and run.eval["test_accuracy"] >= 0


def test_synthetic_settings_are_checked(tiny_run, tiny_gan):
    with pytest.raises(ConfigError, match="synthetic_from: needs a generator"):
        TrainConfig(synthetic_fraction=0.25).validate()
    with pytest.raises(ConfigError, match="synthetic_from: must be a trained generator"):
        TrainConfig(synthetic_fraction=0.25, synthetic_from=str(tiny_run.path)).validate()  # a classifier
    with pytest.raises(ConfigError, match="synthetic_fraction"):
        TrainConfig(synthetic_fraction=1.0, synthetic_from=str(tiny_gan.path)).validate()
    with pytest.raises(ConfigError, match="synthetic_mode"):
        TrainConfig(synthetic_mode="hard").validate()


def test_a_gan_job_trains_into_the_gans_folder(tmp_path, monkeypatch, fake_root):
    monkeypatch.setenv("FASHION_JOBS_DIR", str(tmp_path / "jobs"))
    job = jobs.submit_gan(TINY.replace(epochs=1), data=fake_root, runs=tmp_path / "runs")
    with pytest.raises(jobs.DuplicateJob):
        jobs.submit_gan(TINY.replace(epochs=1), data=fake_root, runs=tmp_path / "runs")
    assert wait_for(job, jobs.FINISHED, timeout=240)["state"] == "done", job.log_tail(40)
    run = Run(tmp_path / "runs" / "gans" / job.id)
    assert run.kind == "gan" and gan.sample_grids(run) and job.kind == "gan"
    monkeypatch.setenv("FASHION_RUNS_DIR", str(tmp_path / "runs"))
    assert [r.name for r in gan.list_generators()][-1] == job.id
    from fashion_core.runs import list_runs
    assert job.id not in [r.name for r in list_runs()]  # classifier lists never show a generator


def test_synthetic_view_draws_the_generators_garments(ready, tiny_gan):
    shutil.copytree(tiny_gan.path, ready.path.parent / "gans" / "tiny-gan")
    shutil.copytree(ready.path, fruns.CHECKPOINT_DIR / "flagship")  # the classifier that judges each image
    at = open_tab(start("pages/dataset.py"), "ds.tab", "Synthetic")
    assert not at.exception and not at.error
    assert at.selectbox(key="ds.gan").value == "tiny-gan"
    assert "how sure the shipped classifier (flagship) is" in text_of(at)  # it judged each generated image
    captions = [c for img in at.get("image") for c in img.captions]
    assert sum(c.endswith("%") or c.endswith("✗") for c in captions) == 80  # under each generated image
    assert "**Ankle boot**" in text_of(at) and len(at.get("image")) >= 20  # generated and real rows per class
    seed = at.number_input(key="ds.gan_seed").value
    next(b for b in at.button if b.label == "Redraw").click().run()
    assert at.number_input(key="ds.gan_seed").value == seed + 1 and not at.exception


def test_without_the_dataset_the_dataset_page_still_shows_a_shipped_generator(empty, tiny_gan):
    shutil.copytree(tiny_gan.path, fruns.CHECKPOINT_DIR / "gans" / "cgan")
    at = start("pages/dataset.py")
    assert not at.exception
    assert "only generated garments can be shown" in text_of(at)
    assert at.selectbox(key="ds.gan").value == "cgan (shipped)"
    assert len(at.get("image")) >= 10 and "once Fashion-MNIST is downloaded" in text_of(at)
