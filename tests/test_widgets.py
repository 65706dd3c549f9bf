"""The rotation lecture's widget and exercise check, driven from Python (no browser needed)."""
import pytest
import torch

widgets = pytest.importorskip("ipywidgets")

from sslteach.checks import ExerciseError, check_rotate_all  # noqa: E402
from sslteach.encoders import small_convnet  # noqa: E402
from sslteach.rotation import rotate_batch, rotation_probabilities  # noqa: E402
from sslteach.loop import Classifier  # noqa: E402
from sslteach.widgets import RotationExplorer, png_bytes  # noqa: E402


@pytest.fixture
def explorer():
    torch.manual_seed(0)
    model = Classifier(small_convnet(), 4).eval()
    images = torch.randint(0, 256, (3, 3, 32, 32), dtype=torch.uint8)
    return RotationExplorer(model, images, ["a", "b"], torch.tensor([0, 1, 0])), model, images


def test_explorer_shows_the_models_probabilities(explorer):
    w, model, images = explorer
    expected = rotation_probabilities(model, images)  # (applied, image, predicted)
    for index in range(3):
        for k in range(4):
            w.image_index.value, w.rotation.value = index, k
            assert torch.allclose(w.probabilities, expected[k, index], atol=1e-5)
            assert [bar.value for bar in w.bars] == pytest.approx(w.probabilities.tolist())
            assert sum(bar.value for bar in w.bars) == pytest.approx(1.0, abs=1e-5)


def test_explorer_updates_picture_and_caption(explorer):
    w, _, images = explorer
    before = w.picture.value
    w.rotation.value = 1
    assert w.picture.value != before and w.picture.value == png_bytes(torch.rot90(images[0], 1, dims=(1, 2)))
    w.image_index.value = 1
    assert w.caption.value.startswith("b, guess")
    assert w.bars[1].bar_style == "success" and w.bars[0].bar_style == ""


def test_png_bytes_is_an_enlarged_png():
    from PIL import Image
    import io

    picture = Image.open(io.BytesIO(png_bytes(torch.zeros(3, 8, 8, dtype=torch.uint8), scale=3)))
    assert picture.size == (24, 24)


def test_check_accepts_the_package_and_explains_mistakes(capsys):
    check_rotate_all(rotate_batch)
    assert "correct" in capsys.readouterr().out

    def scaffold(images):
        raise NotImplementedError

    def clockwise(images):
        return torch.cat([torch.rot90(images, -k, dims=(2, 3)) for k in range(4)]), torch.arange(4).repeat_interleave(len(images))

    def wrong_dims(images):
        return torch.cat([torch.rot90(images, k, dims=(1, 2)) for k in range(4)]), torch.arange(4).repeat_interleave(len(images))

    def interleaved_labels(images):
        rotated, _ = rotate_batch(images)
        return rotated, torch.arange(4).repeat(len(images))

    for fn, hint in [(scaffold, "NotImplementedError"), (clockwise, "anticlockwise"),
                     (wrong_dims, "raised RuntimeError"), (interleaved_labels, "expected")]:
        with pytest.raises(ExerciseError, match=hint.replace("(", r"\(").replace(")", r"\)")):
            check_rotate_all(fn)


# --- the colorization lecture's temperature slider and exercise checks ---------------------------

from sslteach.checks import check_annealed_mean, check_soft_encode  # noqa: E402
from sslteach.colorization import ab_gamut_bins, annealed_mean, rgb_to_lab, soft_encode  # noqa: E402
from sslteach.colorizer import ColorizationNet, colorize  # noqa: E402
from sslteach.widgets import TemperatureExplorer  # noqa: E402


@pytest.fixture
def temperature_explorer():
    torch.manual_seed(0)
    bins = ab_gamut_bins()
    model = ColorizationNet(small_convnet(), len(bins)).eval()
    torch.nn.init.normal_(model.head[-1].weight, std=5.0)  # peaked, varied distributions per pixel
    images = torch.randint(0, 256, (3, 3, 32, 32), dtype=torch.uint8)
    return TemperatureExplorer(model, images, bins), model, images, bins


def test_temperature_slider_recolours_like_colorize(temperature_explorer):
    w, model, images, bins = temperature_explorer
    for T in (0.01, 0.38, 1.0):
        before = w.picture.value
        w.temperature.value = T
        assert torch.allclose(w.colourised, colorize(model, images, bins, T), atol=1e-5)
        assert w.picture.value != before or T == pytest.approx(0.38)
        assert f"T = {T:.2f}" in w.caption.value


def test_temperature_slider_desaturates_towards_the_mean(temperature_explorer):
    w = temperature_explorer[0]
    chroma = []
    for T in (0.01, 0.1, 0.38, 1.0):
        w.temperature.value = T
        chroma.append(w.chroma)
        assert w.chroma == pytest.approx(rgb_to_lab(w.colourised)[:, 1:].norm(dim=1).mean().item())
    assert chroma == sorted(chroma, reverse=True)


def test_colour_checks_accept_the_package_and_explain_mistakes(capsys):
    check_soft_encode(soft_encode)
    check_annealed_mean(annealed_mean)
    assert capsys.readouterr().out.count("correct") == 2

    def unnormalised(ab, bins):
        return soft_encode(ab, bins) * 2

    def all_bins(ab, bins):
        d2 = ((ab.permute(0, 2, 3, 1)[..., None, :] - bins) ** 2).sum(-1)
        w = torch.exp(-d2 / 50)
        return (w / w.sum(-1, keepdim=True)).permute(0, 3, 1, 2)

    def distance_not_squared(ab, bins):
        d = ((ab.permute(0, 2, 3, 1)[..., None, :] - bins) ** 2).sum(-1).sqrt()
        near, index = d.topk(10, dim=-1, largest=False)
        w = torch.exp(-near / 50)
        Z = torch.zeros_like(d).scatter_(-1, index, w / w.sum(-1, keepdim=True))
        return Z.permute(0, 3, 1, 2)

    for wrong, advice in [(unnormalised, "sum to 1"), (all_bins, "10 nearest"), (distance_not_squared, "exp(-d^2")]:
        with pytest.raises(ExerciseError, match=advice.replace("(", r"\(").replace("^", r"\^")):
            check_soft_encode(wrong)

    def times_T(logits, bins, T):
        return annealed_mean(logits * T * T, bins, T)  # softmax(logits * T)

    def scaffold(logits, bins, T):
        raise NotImplementedError

    with pytest.raises(ExerciseError, match="divide them"):
        check_annealed_mean(times_T)
    with pytest.raises(ExerciseError, match="NotImplementedError"):
        check_annealed_mean(scaffold)


def test_temperature_presets_move_the_slider(temperature_explorer):
    w, model, images, bins = temperature_explorer
    assert w.preset.value == 0.38
    w.preset.value = 1.0
    assert w.temperature.value == pytest.approx(1.0)
    assert torch.allclose(w.colourised, colorize(model, images, bins, 1.0), atol=1e-5)
    w.preset.value = 0.01
    assert "T = 0.01" in w.caption.value
