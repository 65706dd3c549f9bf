import pytest
import torch


@pytest.fixture(scope="module")
def one_thread():
    """Tiny tensors gain nothing from threads, and on a busy 2-core machine OpenMP's barriers
    make each small convolution hundreds of times slower. Modules opt in with
    ``pytestmark = pytest.mark.usefixtures("one_thread")``."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(autouse=True)
def no_shipped_checkpoints(tmp_path_factory, monkeypatch):
    """Unit tests never pick up the course's shipped checkpoints (checkpoints/class/) by accident:
    ``load_or_pretrain`` looks for them in an empty folder unless a test says otherwise."""
    monkeypatch.setenv("SSLTEACH_CHECKPOINTS", str(tmp_path_factory.mktemp("no_shipped")))
    monkeypatch.delenv("SSLTEACH_RETRAIN", raising=False)


@pytest.fixture
def shown(monkeypatch):
    """The figures the plotting functions would show (``plt.show``), kept for inspection; closed
    afterwards. Modules that use it select the Agg backend before importing pyplot."""
    import matplotlib.pyplot as plt

    figures = []
    monkeypatch.setattr(plt, "show", lambda: figures.append(plt.gcf()))
    yield figures
    plt.close("all")
