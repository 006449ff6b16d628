"""The Colab notebooks: each walks through the API, runs top to bottom in quick mode, is stored
without outputs, and installs jaxae from the checkout or from one marked git-URL line."""

import json
import pathlib
import re
import time

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "colab").glob("*.ipynb"))


def _notebook(path: pathlib.Path) -> dict:
    notebook = json.loads(path.read_text(encoding="utf-8"))
    assert notebook["nbformat"] == 4
    return notebook


def _code(notebook: dict) -> list[str]:
    return ["".join(cell["source"]) for cell in notebook["cells"] if cell["cell_type"] == "code"]


def test_every_reproduction_has_a_notebook():
    scripts = {p.stem for p in (ROOT / "experiments").glob("*.py") if p.stem != "__init__"}
    assert len(scripts) >= 12
    missing = scripts - {path.stem for path in NOTEBOOKS}
    assert not missing, f"experiments without a colab/ notebook: {sorted(missing)}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda path: path.name)
def test_outputs_are_stripped(path):
    for cell in _notebook(path)["cells"]:
        if cell["cell_type"] == "code":
            assert cell["outputs"] == [], f"{path.name}: a cell keeps its outputs"
            assert cell["execution_count"] is None, f"{path.name}: an execution count is kept"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda path: path.name)
def test_walkthrough_installs_jaxae_and_has_a_quick_parameter_cell(path):
    code = _code(_notebook(path))
    setup = code[0]
    assert re.search(r'^JAXAE_GIT_URL = ""$', setup, re.M), "one marked, empty git-URL line"
    assert 'name\\s*=\\s*"jaxae"' in setup, "the checkout is found by its pyproject.toml"
    assert "nvidia-smi" in setup and "jax[cuda12]" in setup, "the CUDA build on a GPU runtime"
    assert "JAXAE_GIT_URL at the top of this cell" in setup, "a clear message when neither"
    assert re.search(r"^QUICK = True$", code[1], re.M), "the second code cell: QUICK = True"
    source = "\n".join(code)
    assert "!python" not in source and 'subprocess.run([sys.executable, "experiments' not in source
    assert "jaxae.fit(" in source or "jaxae.pretrain" in source, "training runs through jaxae"


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda path: path.name)
def test_notebook_runs_top_to_bottom(path):
    """Quick mode, as stored; a cell that raises fails the test with its traceback."""
    import nbclient  # the dev extra's; not importorskip, so a missing tool fails CI
    import nbformat

    notebook = nbformat.read(path, as_version=4)
    client = nbclient.NotebookClient(
        notebook,
        timeout=300,  # per cell
        kernel_name="python3",
        resources={"metadata": {"path": str(path.parent)}},  # run where the notebook lies
    )
    start = time.perf_counter()
    client.execute()  # raises CellExecutionError on a cell error
    print(f"{path.name}: {time.perf_counter() - start:.0f} s")
    outputs = [o for cell in notebook.cells if cell.cell_type == "code" for o in cell.outputs]
    text = "".join(o.get("text", "") for o in outputs if o.get("name") == "stdout")
    assert "jaxae from the checkout" in text
    assert any("image/png" in o.get("data", {}) for o in outputs), "no figure shown"
