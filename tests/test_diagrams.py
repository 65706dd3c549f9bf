"""The method diagrams (sslteach.diagrams) and their SVG files in lectures/figures/."""
import re
from pathlib import Path

import nbformat
import pytest
from matplotlib.figure import Figure

from sslteach import diagrams

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("name", list(diagrams.DIAGRAMS))
def test_every_diagram_draws_and_its_committed_svg_is_up_to_date(name):
    figure = diagrams.DIAGRAMS[name]()
    assert isinstance(figure, Figure) and figure.axes[0].patches, "a diagram is boxes and arrows"
    committed = diagrams.FIGURES / f"{name}.svg"
    assert committed.exists(), f"{committed} is missing: run python -m sslteach.diagrams"
    assert diagrams.svg_bytes(figure) == committed.read_bytes(), f"{committed} is stale: run python -m sslteach.diagrams"


def test_svg_is_the_same_bytes_every_run_and_carries_no_date():
    first, second = (diagrams.svg_bytes(diagrams.simclr()) for _ in range(2))
    assert first == second
    assert b"<dc:date>" not in first


def test_write_all_writes_one_file_per_diagram(tmp_path):
    paths = diagrams.write_all(["moco", "swav"], tmp_path)
    assert [p.name for p in paths] == ["moco.svg", "swav.svg"]
    assert paths[0].read_bytes() == diagrams.svg_bytes(diagrams.moco())


def test_every_figure_a_lecture_links_to_exists():
    for lecture in sorted((ROOT / "lectures").glob("*.ipynb")):
        for cell in nbformat.read(lecture, as_version=4).cells:
            if cell.cell_type == "markdown":
                for link in re.findall(r"!\[[^\]]*\]\((figures/[^)]+)\)", cell.source):
                    assert (lecture.parent / link).exists(), f"{lecture.name} links to {link}, which is missing"
