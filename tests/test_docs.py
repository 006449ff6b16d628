"""The API reference builds with warnings as errors; its getting-started page is the README's."""

import pathlib
import re
import shutil
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]


def _python_blocks(path: pathlib.Path) -> list[str]:
    return re.findall(r"```python\n(.*?)```", path.read_text(encoding="utf-8"), re.S)


def test_getting_started_shows_the_readme_examples():
    readme = _python_blocks(ROOT / "README.md")
    page = _python_blocks(ROOT / "docs" / "getting-started.md")
    assert page, "docs/getting-started.md has no python examples"
    assert page == readme, "docs/getting-started.md and README.md show different examples"


def test_every_module_page_is_in_the_nav():
    config = (ROOT / "mkdocs.yml").read_text(encoding="utf-8")
    for page in sorted((ROOT / "docs" / "api").glob("*.md")):
        assert f"api/{page.name}" in config, f"{page.name} is not in mkdocs.yml's nav"


@pytest.mark.slow
def test_mkdocs_build_strict(tmp_path):
    """A docstring naming a missing object (:func:`gone`) or a broken link fails the build."""
    site = tmp_path / "site"
    done = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(site)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    assert (site / "api" / "training" / "index.html").is_file()
    html = (site / "api" / "jaxae" / "index.html").read_text(encoding="utf-8")
    assert 'id="jaxae.pretrain_rbm_stack"' in html
    shutil.rmtree(site)


def test_sphinx_roles_become_checked_cross_references():
    import importlib.util

    spec = importlib.util.spec_from_file_location(
        "griffe_sphinx_roles", ROOT / "docs" / "griffe_sphinx_roles.py"
    )
    roles = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(roles)
    text = "See :func:`fit`, :class:`~jaxae.training.state.TrainState` and :func:`jaxae.fit`."
    assert roles._ROLE.sub(roles._link, text) == (
        "See [`fit`][fit], [`TrainState`][jaxae.training.state.TrainState] and "
        "[`jaxae.fit`][jaxae.training.fit.fit]."
    )
