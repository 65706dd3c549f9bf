"""The rotation lecture's widget and exercise check, driven from Python (no browser needed)."""
import pytest
import torch

widgets = pytest.importorskip("ipywidgets")

from sslteach.checks import ExerciseError, check_rotate_all  # noqa: E402
from sslteach.encoders import small_convnet  # noqa: E402
from sslteach.rotation import rotate_batch, rotation_probabilities  # noqa: E402
from sslteach.train import Classifier  # noqa: E402
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
