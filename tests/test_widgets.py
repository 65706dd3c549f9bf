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


# --- the context lecture's lens explorer ----------------------------------------------------------

from sslteach.context import (ABERRATION, CONTEXT, NEIGHBOUR_CELLS, NEIGHBOUR_NAMES, PatchNet,  # noqa: E402
                              chromatic_aberration, context_probabilities, crop_patches, grid_corners)
from sslteach.widgets import ContextExplorer  # noqa: E402


@pytest.fixture
def context_explorer():
    torch.manual_seed(0)
    networks = {"main": PatchNet(small_convnet((4, 8)), 2, 8, 16), "lens": PatchNet(small_convnet((4, 8)), 2, 8)}
    images = torch.randint(0, 256, (3, 3, 32, 32), dtype=torch.uint8)
    return ContextExplorer(networks, images, ["a", "b"], torch.tensor([0, 1, 0])), networks, images


def expected_pairs(image, index, lens):
    """The 8 pairs of one image, cut independently of the widget: (8, 2, 3, P, P)."""
    x = image.float().div(255).unsqueeze(0)
    if lens:
        x = chromatic_aberration(x, ABERRATION)
    generator = torch.Generator().manual_seed(index)  # the widget's seed 0 + image index
    corners = grid_corners(1, 32, CONTEXT.patch_size, CONTEXT.gap, CONTEXT.jitter, generator)
    patches = crop_patches(x, corners[..., 0], corners[..., 1], CONTEXT.patch_size)[0]  # (9, 3, P, P)
    return torch.stack([patches[4].expand(8, -1, -1, -1), patches[list(NEIGHBOUR_CELLS)]], dim=1)


def test_context_explorer_asks_every_network_about_the_pairs_it_shows(context_explorer):
    w, networks, images = context_explorer
    assert w.lens.value
    for index in range(3):
        for lens in (True, False):
            w.image_index.value, w.lens.value = index, lens
            pairs = expected_pairs(images[index], index, lens)
            assert torch.allclose(w.pairs, pairs)
            for name, net in networks.items():
                assert torch.allclose(w.probabilities[name], context_probabilities(net, pairs), atol=1e-6)
                assert torch.allclose(w.probabilities[name].sum(dim=1), torch.ones(8), atol=1e-5)


def test_context_explorer_redraws_for_each_control(context_explorer):
    w = context_explorer[0]
    shown = lambda: [bytes(w.picture.value), bytes(w.other.value), bytes(w.plot.value), w.caption.value]  # noqa: E731
    before = shown()
    w.neighbour.value = 7
    assert w.centre.value == png_bytes(w.pairs[7, 0], scale=12) and w.other.value == png_bytes(w.pairs[7, 1], scale=12)
    assert f"true position {NEIGHBOUR_NAMES[7]}" in w.caption.value
    assert all(a != b for a, b in zip(before, shown()))  # the box on the picture, the neighbour, the answers
    before, probabilities = shown(), w.probabilities
    w.lens.value = False
    assert "without the lens" in w.caption.value
    assert all(not torch.equal(probabilities[name], w.probabilities[name]) for name in probabilities)
    after = shown()  # the untrained networks' answers may round to the same picture
    assert after[0] != before[0] and after[1] != before[1] and after[3] != before[3]
    before = after
    w.image_index.value = 1
    assert w.caption.value.startswith("b, without the lens")
    assert all(a != b for a, b in zip(before, shown()))


def test_context_explorer_is_deterministic(context_explorer):
    w, networks, images = context_explorer
    w.neighbour.value, w.image_index.value = 3, 2
    again = ContextExplorer(networks, images, ["a", "b"], torch.tensor([0, 1, 0]))
    again.neighbour.value, again.image_index.value = 3, 2
    assert (again.picture.value, again.plot.value, again.caption.value) == (w.picture.value, w.plot.value, w.caption.value)


# --- the clustering lecture's cluster browser -----------------------------------------------------

from sslteach import widgets as widgets_module  # noqa: E402
from sslteach.widgets import ClusterBrowser  # noqa: E402


@pytest.fixture
def blobs():
    """60 points in 6 tight, well-separated blobs of 10, two blobs per class, one stray label."""
    torch.manual_seed(0)
    centres = torch.eye(6) * 10  # (6, 6)
    x = (centres.repeat_interleave(10, dim=0) + 0.01 * torch.randn(60, 6))  # (60, 6)
    labels = torch.arange(6).repeat_interleave(10) // 2  # 3 classes, two blobs each
    labels[9] = 2  # one stray member in blob 0
    images = torch.randint(0, 256, (60, 3, 8, 8), dtype=torch.uint8)
    features = {"blobs": x, "noise": torch.randn(60, 6)}
    return features, images, labels


def test_cluster_browser_clusters_once_and_only_redraws(blobs, monkeypatch):
    calls = []
    kmeans = widgets_module.kmeans
    monkeypatch.setattr(widgets_module, "kmeans", lambda *a, **k: calls.append(a[1]) or kmeans(*a, **k))
    w = ClusterBrowser(*blobs, ["c0", "c1", "c2"], ks=(3, 6))
    assert sorted(calls) == [3, 3, 6, 6]  # two feature sets, two ks
    for control, value in [(w.k, 3), (w.order, "size"), (w.cluster, 2), (w.encoder, "noise"), (w.k, 6)]:
        control.value = value
    assert len(calls) == 4


def test_cluster_browser_shows_size_make_up_and_members(blobs):
    features, images, labels = blobs
    w = ClusterBrowser(features, images, labels, ["c0", "c1", "c2"], ks=(3, 6), members=8)
    assert w.k.value == 6 and w.cluster.max == 5 and w.order.value == "purity"
    assignments = w.assignments["blobs", 6]
    purities = []
    for rank in range(6):
        w.cluster.value = rank
        members = assignments == w.shown
        assert torch.equal(w.make_up, torch.bincount(labels[members], minlength=3))
        assert [bar.value for bar in w.bars] == pytest.approx((w.make_up / members.sum()).tolist())
        assert f"holds {int(members.sum())} of 60 images" in w.caption.value
        purities.append(float(w.make_up.max() / w.make_up.sum()))
        majority = int(w.make_up.argmax())
        assert f"{100 * purities[-1]:.0f}% c{majority}" in w.caption.value
        assert [bar.bar_style for bar in w.bars] == ["success" if c == majority else "" for c in range(3)]
    assert purities == sorted(purities, reverse=True)


def test_cluster_browser_controls_change_what_is_shown(blobs):
    w = ClusterBrowser(*blobs, ["c0", "c1", "c2"], ks=(3, 6))
    before = (w.picture.value, w.caption.value)
    w.cluster.value = 5
    assert (w.picture.value, w.caption.value) != before
    w.k.value = 3  # the slider is beyond the new k: it moves back to the last cluster
    assert w.cluster.max == 2 and w.cluster.value == 2 and "k = 3" in w.caption.value
    assert w.counts["blobs", 3].sum() == 60 and int(w.make_up.sum()) == int((w.assignments["blobs", 3] == w.shown).sum())
    w.order.value = "number"
    assert w.shown == 2 and "k-means numbering" in w.caption.value
    w.encoder.value = "noise"
    assert w.caption.value.startswith("<b>noise, k = 3</b>")
    assert w.nmi["blobs", 6] > w.nmi["noise", 6]


def test_cluster_browser_matches_a_direct_kmeans(blobs):
    from sslteach.clustering import kmeans

    features, images, labels = blobs
    w = ClusterBrowser(features, images, labels, ["c0", "c1", "c2"], ks=(4,), seed=3)
    direct, _ = kmeans(features["noise"], 4, 20, torch.Generator().manual_seed(3))
    assert torch.equal(w.assignments["noise", 4], direct)


def test_cluster_browser_orders_equally_pure_clusters_largest_first(monkeypatch):
    assignments = torch.tensor([2, 2, 2, 2, 2, 0, 1, 1, 1])  # clusters of 1, 3 and 5 images
    monkeypatch.setattr(widgets_module, "kmeans", lambda x, k, *args: (assignments, None))
    labels = torch.tensor([1, 1, 1, 1, 1, 1, 1, 1, 0])  # purity 1, 2/3 and 1
    w = ClusterBrowser({"x": torch.zeros(9, 2)}, torch.zeros(9, 3, 4, 4, dtype=torch.uint8), labels, ["c0", "c1"], ks=(3,))
    assert w.ranking().tolist() == [2, 0, 1]  # pure: 5 images, then 1; then the 2/3-pure one
    assert w.shown == 2 and "holds 5 of 9 images, 100% c1" in w.caption.value
    w.order.value = "size"
    assert w.ranking().tolist() == [2, 1, 0]


# --- lecture 09's word neighbours -----------------------------------------------------------------

from sslteach.text import nearest_neighbours  # noqa: E402
from sslteach.widgets import WordNeighbours  # noqa: E402


@pytest.fixture
def word_tables():
    g = torch.Generator().manual_seed(0)
    words = [f"w{i}" for i in range(12)]
    return {"trained": torch.randn(12, 4, generator=g), "random": torch.randn(12, 4, generator=g)}, words


def test_word_neighbours_shows_the_nearest_words_of_the_chosen_table(word_tables):
    tables, words = word_tables
    w = WordNeighbours(tables, words, ["w3", "w7"], k=5)
    for name in tables:
        for word in ("w3", "w7"):
            w.vectors.value, w.word.value = name, word
            indices, similarities = nearest_neighbours(tables[name], words.index(word), 5)
            assert w.neighbours == [words[i] for i in indices.tolist()]
            assert [bar.description for bar in w.bars] == w.neighbours
            assert [bar.value for bar in w.bars] == pytest.approx(similarities.clamp(min=0).tolist(), abs=1e-6)
            assert [n.value for n in w.numbers] == [f"{s:+.2f}" for s in similarities.tolist()]
            assert w.caption.value.startswith(f"<b>{word}</b>, {name} vectors")


def test_word_neighbours_controls_change_what_is_shown(word_tables):
    w = WordNeighbours(*word_tables, ["w3", "w7"], k=5)
    before = [n.value for n in w.numbers], w.caption.value
    w.word.value = "w7"
    after_word = [n.value for n in w.numbers], w.caption.value
    assert after_word != before and "w7" not in w.neighbours
    w.vectors.value = "random"
    assert ([n.value for n in w.numbers], w.caption.value) != after_word


# ----------------------------------------------------------------------------- lecture 08

from sslteach.widgets import HeadlineExplorer  # noqa: E402


def headline_rows():
    """Three seeds of four methods: "up" is above random init with all labels but level with 1%."""
    probe = {"random-init": [0.44, 0.45, 0.46], "supervised": [0.70, 0.71, 0.72], "up": [0.52, 0.53, 0.54], "same": [0.45, 0.46, 0.47]}
    one = {"random-init": [0.25, 0.27, 0.29], "supervised": [0.60, 0.61, 0.62], "up": [0.26, 0.28, 0.30], "same": [0.20, 0.21, 0.22]}
    return {f"{m}-seed{s}": {"method": m, "seed": s, "linear_probe": probe[m][s], "knn": probe[m][s] - 0.05,
                             "label_efficiency": {"0.01": one[m][s], "0.1": probe[m][s] - 0.02, "1.0": probe[m][s]}}
            for m in probe for s in range(3)}


def test_headline_explorer_follows_the_readout_and_the_method():
    w = HeadlineExplorer(headline_rows(), ["random-init", "supervised", "up", "same"])
    assert w.verdicts["up"]["verdict"] == "above" and w.verdicts["same"]["verdict"] == "level within noise"
    assert w.method.options == ("supervised", "up", "same")
    first_picture = bytes(w.picture.value)
    assert first_picture.startswith(b"\x89PNG")
    w.method.value = "up"
    assert "seeds 52.0, 53.0, 54.0" in w.caption.value and "+8.0 points" in w.caption.value
    assert "above random-init" in w.caption.value and "below supervised" in w.caption.value
    w.readout.value = "0.01"
    assert w.verdicts["up"]["verdict"] == "level within noise" and w.verdicts["same"]["verdict"] == "below"
    assert "seeds 26.0, 28.0, 30.0" in w.caption.value and "level within noise" in w.caption.value
    assert bytes(w.picture.value) != first_picture
