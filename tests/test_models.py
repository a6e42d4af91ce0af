"""Every registered model builds, runs forward and backward on 28x28 input, and is Captum-ready."""
from __future__ import annotations

import pytest
import torch
import torch.nn as nn

from fashion_core.models import count_params, create_model, list_models, model_info

REPORT_002_EXACT = {"mlp_baseline": 7_850, "mlp_1hidden": 203_530, "mlp_3hidden_dropout": 247_766,
                    "cnn1_mlp": 850_038, "cnn2_mlp": 409_034}
# every architecture's parameter count as shipped (README's results table): a change to a model's
# layers changes its count and fails here, before a shipped checkpoint stops loading
SHIPPED_PARAMS = {"flagship": 167_784, "quick": 98_672, "flagship_wide": 1_165_920, "inception_dilated": 6_354_986, "cnn5": 390_634,
                  "resnet50": 23_519_690, "convnext_tiny": 27_823_594, **REPORT_002_EXACT, "simple_model_1": 119_042,
                  "simple_model_2": 566_522, "inception": 359_002, "resnet": 1_275_770, "inception_resnet": 1_039_162,
                  "alexnet_like": 889_354, "vgg_like": 204_778}


def test_every_registered_model_has_a_known_parameter_count():
    assert set(list_models()) == set(SHIPPED_PARAMS)


@pytest.mark.parametrize("name", list_models())
def test_forward_backward(name):
    torch.manual_seed(0)
    model = create_model(name)
    x = torch.rand(3, 1, 28, 28)
    out = model(x)
    assert out.shape == (3, 10)
    out.logsumexp(1).sum().backward()
    assert torch.isfinite(out).all()
    grads = [p.grad for p in model.parameters() if p.requires_grad]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)


@pytest.mark.parametrize("name", list_models())
def test_parameter_count_matches_report(name):
    info = model_info(name)
    n = count_params(create_model(name))
    assert n == SHIPPED_PARAMS[name] and info.num_params == n  # what list-models and the model card show
    if name in REPORT_002_EXACT:
        assert n == REPORT_002_EXACT[name] == info.reported_params
    elif info.reported_params:
        assert abs(n - info.reported_params) / info.reported_params <= 0.10, (n, info.reported_params)


@pytest.mark.parametrize("name", list_models())
def test_activations_are_separate_non_inplace_modules(name):
    """Captum's Guided Backprop hooks ReLU modules: each must be non-inplace and used once."""
    model = create_model(name).eval()
    calls: dict[int, int] = {}
    hooks = [m.register_forward_hook(lambda m, i, o: calls.__setitem__(id(m), calls.get(id(m), 0) + 1))
             for m in model.modules() if isinstance(m, nn.ReLU)]
    with torch.no_grad():
        model(torch.rand(1, 1, 28, 28))
    for h in hooks:
        h.remove()
    relus = [m for m in model.modules() if isinstance(m, nn.ReLU)]
    assert relus or name == "mlp_baseline" or name == "convnext_tiny"
    assert not any(m.inplace for m in relus)
    assert all(c == 1 for c in calls.values()), f"{name}: a ReLU module is reused in forward"


def test_unknown_model_is_a_clear_error():
    with pytest.raises(ValueError, match="unknown model 'nope'"):
        create_model("nope")


def test_registry_metadata_is_complete():
    reports = {model_info(n).report for n in list_models()}
    assert {"000", "001", "002", "003", "004", "ours"} <= reports
    for name in list_models():
        info = model_info(name)
        assert info.description and info.report


def test_report_004_ablations_change_the_parameter_count_as_the_layers_say():
    def alexnet(k, c1, c2, f1, f2, prelu=0):  # conv weights + biases, two dense layers, the classifier
        return (k * k * c1 + c1) + (c1 * k * k * c2 + c2) + (c2 * 49 * f1 + f1) + (f1 * f2 + f2) + (f2 * 10 + 10) + prelu

    assert count_params(create_model("alexnet_like")) == alexnet(5, 32, 64, 256, 128) == SHIPPED_PARAMS["alexnet_like"]
    assert count_params(create_model("alexnet_like", kernel=3)) == alexnet(3, 32, 64, 256, 128)
    assert count_params(create_model("alexnet_like", filters=[16, 32], fc=[128, 64])) == alexnet(5, 16, 32, 128, 64)
    assert count_params(create_model("alexnet_like", activation="prelu")) == alexnet(5, 32, 64, 256, 128, prelu=4)
    with pytest.raises(ValueError, match="kernel 3 or 5"):
        create_model("alexnet_like", kernel=7)
