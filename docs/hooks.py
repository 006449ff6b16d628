"""MkDocs hooks: serve experiments/RESULTS.md and its figures, and the CHANGELOG, from the repo.

They live outside ``docs/``; adding them as generated files keeps one copy of each and lets
``mkdocs build --strict`` check every link in them (a figure RESULTS.md names must exist).
"""

from __future__ import annotations

import pathlib

from mkdocs.structure.files import File, Files

ROOT = pathlib.Path(__file__).resolve().parents[1]


def on_files(files: Files, config) -> Files:
    sources = {"changelog.md": ROOT / "CHANGELOG.md"}
    sources["experiments/RESULTS.md"] = ROOT / "experiments" / "RESULTS.md"
    for figure in sorted((ROOT / "experiments" / "figures").rglob("*.png")):
        sources[figure.relative_to(ROOT).as_posix()] = figure
    for uri, path in sources.items():
        if path.is_file():
            files.append(File.generated(config, uri, abs_src_path=str(path)))
    return files
