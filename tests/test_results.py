import json
import pathlib
import re

import pytest

from jaxae import results

ROOT = pathlib.Path(__file__).resolve().parents[1]


def _row(mode="full", value=1.0, model="pca"):
    return results.make_row(
        experiment="exp",
        model=model,
        metric="error",
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
    assert sorted((r["mode"], r["value"]) for r in rows) == [
        ("full", 0.5),
        ("quick", 6.0),
        ("superseded", 1.0),  # the earlier test score beside the paper's stays on record
    ]


def test_replaced_test_scores_stay_on_record_and_in_the_headline(tmp_path):
    def row(value, command="python experiments/exp.py", **kwargs):
        return dict(_row("full", value, model="CAE"), command=command, **kwargs)

    results.write_results("exp", [row(1.43, date="2026-11-23")], tmp_path)
    results.write_results("exp", [row(1.37, "python experiments/exp.py --set lr=3e-3")], tmp_path)
    results.write_results("exp", [row(1.37, "python experiments/exp.py --set lr=3e-3")], tmp_path)
    # Not kept: rows off the test split, without a paper number, or of quick runs.
    plain = dict(_row("full", 7.0, model="AE"), metric="training wall time (s)", paper_value=None)
    results.write_results("exp", [plain], tmp_path)
    results.write_results("exp", [dict(plain, value=8.0)], tmp_path)
    rows = results.read_results(tmp_path / "exp.json")
    assert sorted((r["mode"], r["metric"], r["value"]) for r in rows) == [
        ("full", "error", 1.37),
        ("full", "training wall time (s)", 8.0),
        ("superseded", "error", 1.43),  # once: the same command and value again is no new score
    ]
    text = results.render_markdown(tmp_path)
    (line,) = _headline_lines(text)
    cells = _cells(line)
    assert cells[4] == "1.37" and "earlier test runs, since replaced: 1.43 (2026-11-23)" in cells[6]
    assert "**superseded run** — `python experiments/exp.py`" in text
    assert "**1 of 1 paper results met.**" in text  # a superseded row is never counted
    with pytest.raises(ValueError, match="a run writes mode"):
        results.write_results("exp", [dict(row(1.0), mode="superseded")], tmp_path)


def test_render_markdown_lists_ours_and_paper_side_by_side(tmp_path):
    results.write_results("exp", [_row("full", 1.0), _row("full", 3.25, model="ae")], tmp_path)
    results.write_results("exp", [_row("quick", 9.0)], tmp_path)
    text = results.render_markdown(tmp_path)
    assert "## exp" in text
    assert "| ae | error | test | 3.25 | 2 | Paper 2006 | cpu | 1 | 2026-11-23 | 0 |" in text
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
    text = results.render_markdown(tmp_path)
    headline, tables = text.split("## exp")
    for part, columns in [(headline, 7), (tables, 10)]:
        table_rows = [line for line in part.splitlines() if "cos" in line]
        assert table_rows == [table_rows[0]] and "min \\|cos\\| vs PCA" in table_rows[0]
        assert table_rows[0].count("|") - table_rows[0].count("\\|") == columns + 1


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
    assert sorted((r["mode"], r["model"], r["value"]) for r in rows) == [
        ("full", "iwae5", 0.5),
        ("full", "vae", 1.0),
        ("superseded", "iwae5", 2.0),
    ]
    text = results.render_markdown(tmp_path).split("## exp")[1]  # the per-run tables
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


@pytest.mark.parametrize(
    "metric, lower",
    [
        ("squared error per image", True),
        ("classification error (%)", True),
        ("max relative variance error (%)", True),
        ("relative excess over PCA-30 (%)", True),
        ("NLL, k=5000 importance samples (nats)", True),
        ("test cross-entropy", True),
        ("reconstruction loss", True),
        ("precision@10", False),
        ("recall at 1000", False),
        ("mAP", False),
        ("accuracy (%)", False),
        ("AUC", False),
        ("min principal-angle cosine vs PCA-30", False),
        ("min |cos| recovered vs PCA direction", False),
        ("-ELBO (nats)", True),  # a negated higher-is-better quantity
        ("test -ELBO", True),
        ("negative log-likelihood", True),
        ("log-likelihood", False),
        ("\u2212ELBO", True),  # a Unicode minus negates too
        ("IWAE bound, k=50 (nats)", False),  # the unit says nothing: a bound is maximised
        ("-IWAE bound, k=50 (nats)", True),
        ("log p(x) (nats)", False),
        ("ELBO (nats)", False),
    ],
)
def test_lower_is_better_reads_the_direction_from_the_metric_name(metric, lower):
    assert results.lower_is_better(metric) is lower


@pytest.mark.parametrize(
    "metric, found",
    [
        ("active units (of 50)", "none of the words"),
        ("terror index", "none of the words"),  # a whole word, not a substring
        ("NLL and mAP", r"both \['nll'\] \(lower\) and \['map'\] \(higher\)"),
    ],
)
def test_lower_is_better_refuses_a_metric_it_cannot_classify(metric, found):
    with pytest.raises(
        ValueError, match=rf"cannot tell .* for '{re.escape(metric)}' \(found {found}"
    ):
        results.lower_is_better(metric)


def _headline_lines(text):
    """The table rows of the headline section of a RESULTS.md text."""
    section = text.split("## Headline", 1)[1].split("\n## ", 1)[0]
    return [line for line in section.splitlines() if line.startswith("| [")]


def _cells(line):
    return [cell.strip() for cell in re.split(r"(?<!\\)\|", line)[1:-1]]


def test_headline_says_met_or_not_in_the_metric_s_direction(tmp_path):
    def row(model, metric, value, paper_value, split="test", mode="full", source="Paper 2006"):
        return dict(
            _row(mode, value, model),
            metric=metric,
            split=split,
            paper_value=paper_value,
            paper_source=source,
        )

    full = [
        row("lower-met", "error (%)", 1.0, 2.0),
        row("lower-missed", "error (%)", 3.0, 2.0),
        row("higher-met", "mAP", 0.9, 0.8),
        row("higher-missed", "mAP", 0.7, 0.8),
        row("tie", "classification error (%)", 164 / 10000 * 100, 1.64),  # 1.6400000000000001
        row("subset", "NLL (nats)", 80.0, 85.0, split="test[:1000]"),
        row("no-paper", "error (%)", 1.0, None),
        row("train-split", "error (%)", 1.0, 2.0, split="train"),
        row("target", "error (%)", 1.0, 2.0, source="target: below 2 %"),
        row("unclassified-but-no-paper", "active units", 3.0, None),
    ]
    quick = [row("quick", "error (%)", 1.0, 2.0, mode="quick")]
    verdicts = [(r["model"], met) for r, met in results.compare_to_papers(full + quick)]
    assert verdicts == [
        ("lower-met", True),
        ("lower-missed", False),
        ("higher-met", True),
        ("higher-missed", False),
        ("tie", True),
        ("subset", True),
    ]

    unclassified = row("new-metric", "active units", 3.0, 2.0)
    with pytest.raises(ValueError, match="exp, model 'new-metric': metric: cannot tell"):
        results.compare_to_papers([unclassified])

    results.write_results("exp", full, tmp_path)
    results.write_results("exp", quick, tmp_path)
    text = results.render_markdown(tmp_path)
    assert "**4 of 6 paper results met.**" in text
    shown = {_cells(line)[1]: _cells(line) for line in _headline_lines(text)}
    assert list(shown) == [model for model, _ in verdicts]
    assert [shown[model][5] for model, _ in verdicts] == ["yes", "no", "yes", "no", "yes", "yes"]
    assert shown["subset"][2] == "NLL (nats), test[:1000]"
    assert shown["lower-met"][0] == "[Paper 2006](#exp)"
    assert text.index("## Headline") < text.index("## exp")


def test_headline_budget_names_the_runs_overrides(tmp_path):
    rows = [
        dict(_row(model="a"), wall_time_s=1500.0, command="python e.py --no-progress"),
        dict(_row(model="b"), command="python e.py --out x --set epochs=5 --set=batch_size=20"),
    ]
    results.write_results("exp", rows, tmp_path)
    budgets = [_cells(line)[6] for line in _headline_lines(results.render_markdown(tmp_path))]
    assert budgets == [
        "25 min, cpu; script defaults",
        "1 s, cpu; `--set epochs=5 --set batch_size=20`",
    ]


def test_headline_quotes_a_second_hand_number_as_such(tmp_path):
    rows = [
        dict(_row(model="a"), paper_source="Burda, Grosse & Salakhutdinov 2015, Table 1 (MNIST)"),
        dict(_row(model="b"), paper_source="Rifai et al. 2011, ICML, Table 2, as cited in issue 5"),
        dict(_row(model="c"), paper_source="a thesis without a year"),
    ]
    results.write_results("exp", rows, tmp_path)
    papers = [_cells(line)[0] for line in _headline_lines(results.render_markdown(tmp_path))]
    assert papers == [
        "[Burda, Grosse & Salakhutdinov 2015](#exp)",
        "[Rifai et al. 2011, as cited in issue 5](#exp)",
        "[exp](#exp)",
    ]


def test_headline_shows_one_run_per_paper_number_the_largest_on_the_whole_test_set(tmp_path):
    def row(model, value, wall_time_s, split="test", paper_value=2.0, experiment="exp"):
        return dict(
            _row(model=model, value=value),
            experiment=experiment,
            split=split,
            wall_time_s=wall_time_s,
            paper_value=paper_value,
        )

    rows = [
        row("VAE k=1", 1.0, 5000.0, split="test[:1000]"),  # best score and budget, on a subset
        row("VAE k=1, 60 epochs", 3.0, 100.0),
        row("VAE k=1, 360 epochs", 2.5, 900.0),  # shown: the whole test set, the larger budget
        row("IWAE k=5", 1.5, 10.0, paper_value=1.8),  # another number of the same paper
        row("CAE", 1.9, 10.0),  # another model with the same number: its own row
    ]
    results.write_results("exp", rows, tmp_path)
    # The same baseline in a second experiment is the same paper result.
    results.write_results("other", [row("VAE k=1", 2.1, 9000.0, experiment="other")], tmp_path)
    text = results.render_markdown(tmp_path)
    shown = [_cells(line) for line in _headline_lines(text)]
    assert [(cells[0], cells[1], cells[4], cells[5]) for cells in shown] == [
        ("[Paper 2006](#other)", "VAE k=1", "2.1", "no"),
        ("[Paper 2006](#exp)", "IWAE k=5", "1.5", "yes"),
        ("[Paper 2006](#exp)", "CAE", "1.9", "yes"),
    ]
    # Every other run against the number is listed beside the one shown: no score is hidden.
    others = "the largest of 4 runs; the others: 1 (VAE k=1, test[:1000], 83 min); 3 (VAE k=1, "
    assert others in shown[0][6] and "2.5 (VAE k=1, 360 epochs, 15 min))" in shown[0][6]
    assert "runs" not in shown[1][6]
    assert "**2 of 3 paper results met.**" in text
    # Without the 9000 s run, the 900 s one on the whole test set wins over the subset's 5000 s.
    (tmp_path / "other.json").unlink()
    shown = [_cells(line) for line in _headline_lines(results.render_markdown(tmp_path))]
    assert shown[0][1:6] == ["VAE k=1, 360 epochs", "error", "2", "2.5", "no"]


def test_the_repository_s_headline_lists_its_paper_results(tmp_path):
    results_dir = ROOT / "experiments" / "results"
    out = tmp_path / "RESULTS.md"
    results.main(["--results-dir", str(results_dir), "--out", str(out)])
    text = out.read_text()
    compared = results.headline_rows(
        (path.stem, row, met)
        for path in sorted(results_dir.glob("*.json"))
        for row, met in results.compare_to_papers(results.read_results(path))
    )
    lines = _headline_lines(text)
    assert len(lines) == len(compared) > 0
    met = sum(_cells(line)[5] == "yes" for line in lines)
    counted = [c for c in compared if c[2] is not None]
    assert f"**{met} of {len(counted)} paper results met.**" in text
    baselines = {_cells(line)[1] for line in lines if _cells(line)[5] == "baseline, not counted"}
    assert baselines == {"pca-30", "logistic pca-30"}  # Hinton 2006's, beside its deep AE
    fine_tuned = [
        _cells(line)
        for line in lines
        if "(#hinton2006)" in line and _cells(line)[1] == "deep AE, pretrained + fine-tuned"
    ]
    assert len(fine_tuned) == 1 and fine_tuned[0][5] == "yes"
    assert text.index("## Headline") < text.index("## hinton2006")


def test_a_baseline_the_paper_reported_is_listed_but_never_counted(tmp_path):
    def row(model, value, source):
        return dict(_row(model=model, value=value), paper_value=2.0, paper_source=source)

    rows = [
        row("deep AE", 1.5, "Paper 2006, Fig. 2"),
        row("PCA", 1.0, "baseline: Paper 2006, Fig. 2"),  # beats the paper's: still not "met"
    ]
    results.write_results("exp", rows, tmp_path)
    verdicts = [(r["model"], met) for r, met in results.compare_to_papers(rows)]
    assert verdicts == [("deep AE", True), ("PCA", None)]
    text = results.render_markdown(tmp_path)
    shown = [_cells(line) for line in _headline_lines(text)]
    assert [(cells[0], cells[1], cells[5]) for cells in shown] == [
        ("[Paper 2006](#exp)", "deep AE", "yes"),
        ("[Paper 2006](#exp)", "PCA", "baseline, not counted"),
    ]
    assert "**1 of 1 paper results met.** (1 baseline listed beside them, not counted.)" in text
