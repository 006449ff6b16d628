"""The Colab notebooks only call experiments/: each runs a script that exists, shows its figures."""

import json
import pathlib
import re

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "colab").glob("*.ipynb"))


def test_there_are_notebooks():
    assert {path.stem for path in NOTEBOOKS} >= {"hinton2006", "linear_pca", "vae"}


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda path: path.name)
def test_notebook_runs_an_existing_experiment_and_shows_its_figures(path):
    notebook = json.loads(path.read_text(encoding="utf-8"))
    assert notebook["nbformat"] == 4
    code = "\n".join(
        "".join(cell["source"]) for cell in notebook["cells"] if cell["cell_type"] == "code"
    )
    scripts = re.findall(r"!python (experiments/\w+\.py)", code)
    assert scripts, f"{path.name}: no experiments/ script is run"
    sources = ""
    for script in scripts:
        assert (ROOT / script).is_file(), f"{path.name}: {script} does not exist"
        sources += (ROOT / script).read_text(encoding="utf-8")
    for figure in re.findall(r'"(\w+\.png)"', code):
        assert f'"{figure}"' in sources, f"{path.name}: no script writes {figure}"
