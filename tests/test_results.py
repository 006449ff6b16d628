import json

import pytest

from jaxae import results


def _row(mode="full", value=1.0, model="pca"):
    return results.make_row(
        experiment="exp",
        model=model,
        metric="err",
        split="test",
        value=value,
        mode=mode,
        seed=0,
        wall_time_s=1.23,
        paper_value=2.0,
        paper_source="Paper 2006",
        hardware="cpu",
        date="2026-11-23",
        command="python experiments/exp.py",
    )


def test_row_has_exactly_the_documented_keys():
    assert tuple(_row()) == results.ROW_KEYS


def test_quick_run_never_overwrites_full_rows(tmp_path):
    results.write_results("exp", [_row("full", 1.0)], tmp_path)
    results.write_results("exp", [_row("quick", 5.0)], tmp_path)
    results.write_results("exp", [_row("quick", 6.0)], tmp_path)
    rows = json.loads((tmp_path / "exp.json").read_text())
    assert [(r["mode"], r["value"]) for r in rows] == [("full", 1.0), ("quick", 6.0)]
    results.write_results("exp", [_row("full", 0.5)], tmp_path)
    rows = results.read_results(tmp_path / "exp.json")
    assert sorted((r["mode"], r["value"]) for r in rows) == [("full", 0.5), ("quick", 6.0)]


def test_render_markdown_lists_ours_and_paper_side_by_side(tmp_path):
    results.write_results("exp", [_row("full", 1.0), _row("full", 3.25, model="ae")], tmp_path)
    results.write_results("exp", [_row("quick", 9.0)], tmp_path)
    text = results.render_markdown(tmp_path)
    assert "## exp" in text
    assert "| ae | err | test | 3.25 | 2 | Paper 2006 | cpu | 1 | 2026-11-23 | 0 |" in text
    assert text.index("**full run**") < text.index("**quick run**")


def test_bad_rows_are_rejected(tmp_path):
    with pytest.raises(ValueError, match="mode: expected one of"):
        results.make_row(
            experiment="e",
            model="m",
            metric="x",
            split="t",
            value=1,
            mode="fast",
            seed=0,
            wall_time_s=1,
        )
    for bad in ["nan", "inf", "-inf"]:
        with pytest.raises(ValueError, match=f"value: expected a finite number for m/x, got {bad}"):
            results.make_row(
                experiment="e",
                model="m",
                metric="x",
                split="t",
                value=float(bad),
                mode="full",
                seed=0,
                wall_time_s=1,
            )
    row = _row()
    del row["seed"]
    with pytest.raises(ValueError, match="row keys differ from ROW_KEYS"):
        results.write_results("exp", [row], tmp_path)
    with pytest.raises(ValueError, match="experiment 'exp' != 'other'"):
        results.write_results("other", [_row()], tmp_path)
    with pytest.raises(ValueError, match="single mode per write"):
        results.write_results("exp", [_row("full"), _row("quick")], tmp_path)


def test_failed_write_leaves_the_old_file_intact(tmp_path, monkeypatch):
    results.write_results("exp", [_row("full", 1.0)], tmp_path)
    before = (tmp_path / "exp.json").read_text()

    def boom(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(results.json, "dumps", boom)
    with pytest.raises(OSError, match="disk full"):
        results.write_results("exp", [_row("full", 2.0)], tmp_path)
    assert (tmp_path / "exp.json").read_text() == before
    assert [p.name for p in tmp_path.iterdir()] == ["exp.json"]


def test_pipes_in_cells_do_not_break_the_table(tmp_path):
    row = _row()
    row["metric"] = "min |cos| vs PCA"
    results.write_results("exp", [row], tmp_path)
    table_rows = [line for line in results.render_markdown(tmp_path).splitlines() if "cos" in line]
    assert table_rows == [table_rows[0]] and "min \\|cos\\| vs PCA" in table_rows[0]
    assert table_rows[0].count("|") - table_rows[0].count("\\|") == 11  # ten columns


def test_cli_regenerates_the_markdown_without_warnings(tmp_path):
    import subprocess
    import sys

    results.write_results("exp", [_row()], tmp_path)
    out = tmp_path / "RESULTS.md"
    proc = subprocess.run(
        [
            sys.executable,
            "-W",
            "error",
            "-m",
            "jaxae.results",
            "--results-dir",
            str(tmp_path),
            "--out",
            str(out),
        ],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stderr
    assert out.read_text() == results.render_markdown(tmp_path)


def test_a_run_of_some_models_keeps_the_other_models_rows_and_their_command(tmp_path):
    first = dict(_row("full", 1.0, model="vae"), command="python vae.py")
    other = dict(_row("full", 2.0, model="iwae5"), command="python vae.py")
    results.write_results("exp", [first, other], tmp_path)
    rerun = dict(_row("full", 0.5, model="iwae5"), command="python vae.py --set models=iwae5")
    results.write_results("exp", [rerun], tmp_path)
    rows = results.read_results(tmp_path / "exp.json")
    assert sorted((r["model"], r["value"]) for r in rows) == [("iwae5", 0.5), ("vae", 1.0)]
    text = results.render_markdown(tmp_path)
    assert "**full run** — `python vae.py`" in text
    assert "**full run** — `python vae.py --set models=iwae5`" in text
    assert text.index("python vae.py`") < text.index("| vae |") < text.index("models=iwae5`")


def test_render_markdown_links_figures_in_subfolders(tmp_path):
    results_dir = tmp_path / "results"
    results.write_results("exp", [_row()], results_dir)
    (tmp_path / "figures" / "exp" / "extra").mkdir(parents=True)
    (tmp_path / "figures" / "exp" / "top.png").write_bytes(b"png")
    (tmp_path / "figures" / "exp" / "extra" / "filters.png").write_bytes(b"png")
    text = results.render_markdown(results_dir)
    assert "[extra/filters.png](figures/exp/extra/filters.png)" in text
    assert "[top.png](figures/exp/top.png)" in text


def test_concurrent_writers_of_one_experiment_keep_every_row(tmp_path):
    # Runs of different models of one experiment finishing together must not drop rows.
    import threading

    barrier = threading.Barrier(8)

    def writer(i):
        barrier.wait()
        for j in range(10):
            results.write_results("exp", [_row(model=f"m{i}-{j}")], tmp_path)

    threads = [threading.Thread(target=writer, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    models = {row["model"] for row in results.read_results(tmp_path / "exp.json")}
    assert models == {f"m{i}-{j}" for i in range(8) for j in range(10)}


def test_hardware_description_counts_the_cores_a_pinned_run_may_use(monkeypatch):
    monkeypatch.setattr(results.os, "cpu_count", lambda: 2)
    monkeypatch.setattr(results.os, "sched_getaffinity", lambda pid: {0, 1}, raising=False)
    assert "; 2 cores)" in results.hardware_description()
    monkeypatch.setattr(results.os, "sched_getaffinity", lambda pid: {1}, raising=False)
    assert "; 1 of 2 cores)" in results.hardware_description()


@pytest.mark.parametrize("text", ["[{", "not json", "[1, 2]"])
def test_a_malformed_results_file_is_refused_naming_it(text, tmp_path):
    path = tmp_path / "exp.json"
    path.write_text(text)
    with pytest.raises(ValueError, match=r"exp\.json.*(not valid JSON|expected a JSON object)"):
        results.read_results(path)


def test_inf_is_never_written_as_nonstandard_json(tmp_path):
    row = {**_row(), "value": float("inf")}
    with pytest.raises(ValueError, match="rows: .*exp.json would hold NaN/inf"):
        results.write_results("exp", [row], tmp_path)
    assert not (tmp_path / "exp.json").exists()
