"""Report rendering: formats, the paper beside ours, self-contained HTML, Markdown with working links."""

from __future__ import annotations

import base64
import re

import pytest
from PIL import Image

from fexprune import paper
from fexprune.report.html import render_html, write_html
from fexprune.report.markdown import render_markdown, write_markdown
from fexprune.report.sweep import sweep_table, sweep_table_rows
from fexprune.report.tables import (
    Column, Figure, KeyValues, Report, Section, Table, Text, comparison_columns, mean_std, number, percent,
    signed, with_differences,
)


def test_formats_match_the_papers_way_of_printing():
    assert percent()(paper.TRAINING_TEST_ACCURACY) == "37.87%"
    assert number(4)(0.28314) == "0.2831"
    assert signed(2, 100.0, " pp")(-0.0155) == "-1.55 pp"
    assert signed(4)(0.05) == "+0.0500"
    assert mean_std(percent())((0.3669, 0.0213)) == "36.69% ± 2.13%"
    assert percent()(None) == "–" and number()(float("nan")) == "–"


def test_differences_are_ours_minus_paper_and_missing_stays_missing():
    rows = with_differences([{"loss": 0.5, "paper_loss": 0.3}, {"loss": 0.5, "paper_loss": None}], ["loss"])
    assert rows[0]["diff_loss"] == pytest.approx(0.2) and rows[1]["diff_loss"] is None


def test_sweep_rows_put_the_papers_numbers_beside_ours():
    ours = [{"channels": (16, 32), "n": 5, "train_loss": 0.2, "train_loss_std": 0.01, "train_accuracy": 0.95,
             "train_accuracy_std": 0.01, "test_loss": 1.9, "test_loss_std": 0.1, "test_accuracy": 0.40,
             "test_accuracy_std": 0.02},
            {"channels": (3, 5), "n": 1, **{k: 0.5 for k in ("train_loss", "train_accuracy", "test_loss", "test_accuracy")},
             **{f"{k}_std": 0.0 for k in ("train_loss", "train_accuracy", "test_loss", "test_accuracy")}}]
    first, second = sweep_table_rows(ours)
    assert first["paper_test_accuracy"] == paper.CHANNEL_SWEEP[(16, 32)]["test_accuracy"]
    assert first["diff_test_accuracy"] == pytest.approx(0.40 - 0.3669)
    assert first["test_accuracy"] == (0.40, 0.02)
    assert second["paper_train_loss"] is None and second["diff_train_loss"] is None
    cells = sweep_table(ours).cells()
    assert cells[0][:2] == ["16/32", "5"] and "+3.31 pp" in cells[0] and "99.01%" in cells[0]


@pytest.fixture
def crafted(tmp_path) -> Report:
    image = tmp_path / "figures" / "plot.png"
    image.parent.mkdir()
    Image.new("RGB", (40, 30), (200, 10, 10)).save(image)
    rows = with_differences([{"units": 9, "loss": 0.01, "paper_loss": 0.0064}], ["loss"])
    table = Table("PIC <table>", [Column("units", "units", kind="key"), *comparison_columns("loss", "loss")], rows, "a note")
    return Report("Title & co", [
        Section("First", [table, Figure("Fig. 4", image, "caption"), Text("one\n\ntwo")]),
        Section("Second", [KeyValues("Versions", [("torch", "2.x")])]),
    ])


def test_html_is_self_contained_and_escapes_text(crafted, tmp_path):
    page = render_html(crafted)
    assert "<script" not in page and "<link" not in page and "http" not in page  # nothing fetched
    (data,) = re.findall(r'src="data:image/png;base64,([^"]+)"', page)
    assert base64.b64decode(data) == crafted.figures()[0].path.read_bytes()
    assert "PIC &lt;table&gt;" in page and "Title &amp; co" in page
    assert "<td class=\"paper\">0.0064</td>" in page and "+0.0036" in page
    assert page.count("<p>") == 2 and 'href="#s1"' in page
    path = write_html(tmp_path / "out" / "report.html", crafted)
    assert path.read_text(encoding="utf-8") == page


def test_markdown_has_the_same_tables_and_relative_figure_links(crafted, tmp_path):
    path = write_markdown(tmp_path / "report.md", crafted)
    text = path.read_text()
    assert "| units | loss | loss (paper) | Δ |" in text
    assert "| 9 | 0.0100 | 0.0064 | +0.0036 |" in text
    (link,) = re.findall(r"!\[Fig. 4\]\(([^)]+)\)", text)
    assert link == "figures/plot.png" and (tmp_path / link).is_file()
    assert "- **torch**: 2.x" in text
    assert render_markdown(crafted).startswith("# Title & co\n")


def test_training_curve_spans_the_run_and_marks_a_lone_test_point():
    from fexprune.report.training import training_curve_figure

    rows = [{"epoch": e, "train_loss": 2 - e / 10, "train_accuracy": e / 10} for e in range(6)]
    rows[-1].update(test_loss=1.7, test_accuracy=0.3)
    figure = training_curve_figure(rows)
    for axis in figure.axes:
        low, high = axis.get_xlim()
        assert -1 < low <= 0 and 5 <= high < 6  # not 0-700: the paper's log beyond epoch 5 is left out
        lines = {line.get_label(): line for line in axis.get_lines()}
        assert list(lines["train (paper)"].get_xdata()) == [0]
        assert lines["test (ours)"].get_marker() not in ("None", None, "", " ")
    long_rows = [{"epoch": e, "train_loss": 1.0, "train_accuracy": 0.5} for e in range(0, 301, 10)]
    paper_points = {line.get_label(): line for line in training_curve_figure(long_rows).axes[0].get_lines()}["train (paper)"]
    assert list(paper_points.get_xdata()) == [0, 100, 200, 300]
    late = [{"epoch": e, "train_loss": 1.0, "train_accuracy": 0.5} for e in range(1, 6)]  # no paper epoch inside
    assert "train (paper)" not in [line.get_label() for line in training_curve_figure(late).axes[0].get_lines()]


def test_wilson_interval_matches_its_formula_and_stays_in_0_1():
    from fexprune.report.intervals import wilson

    low, high = wilson(0.5, 100)
    assert round(low, 4) == 0.4038 and round(high, 4) == 0.5962  # the textbook value for 50 of 100
    assert wilson(0.0, 10)[0] == 0.0 and 0.25 < wilson(0.0, 10)[1] < 0.35  # no successes: still uncertain
    for k, n in ((0, 9), (9, 9), (0, 1), (1, 1), (3, 7)):  # the interval always holds the accuracy itself
        low, high = wilson(k / n, n)
        assert 0 <= low <= k / n <= high <= 1
    low, high = wilson(60 / 169, 169)
    assert 0.28 < low < 60 / 169 < high < 0.44  # the paper CNN's 60 of 169: about +-7 points


def test_accuracy_figures_show_the_interval_on_the_whole_scale():
    from matplotlib.collections import PolyCollection

    from fexprune.report.prune_curve import curve_figure
    from fexprune.report.training import training_curve_figure

    rows = [{"epoch": e, "train_loss": 1.0, "train_accuracy": 0.5, "test_loss": 1.0, "test_accuracy": 0.35} for e in range(1, 6)]
    accuracy_axis = training_curve_figure(rows, n_test=169).axes[1]
    assert accuracy_axis.get_ylim() == (0, 100)
    (band,) = [c for c in accuracy_axis.collections if isinstance(c, PolyCollection)]
    heights = band.get_paths()[0].vertices[:, 1]
    assert 27 < heights.min() < 29 and 42 < heights.max() < 44  # 35% of 169 images: 28-43% at 95%
    assert "test (ours), 95% interval for n = 169" in [line.get_label() for line in accuracy_axis.get_lines()]

    point = {"method": "l2", "macs_reduction": 0.5, "macs_ratio": 0.5, "parameters_ratio": 0.5, "latency_ms": 1.0}
    results = {"unpruned": {"test_accuracy": 0.36, "latency_ms": 2.0}, "architecture": "cnn", "recipe": "paper", "n_test": 169,
               "points": [{**point, "test_accuracy": 0.35}, {**point, "macs_reduction": 0.7, "macs_ratio": 0.3, "test_accuracy": 0.34}]}
    axes = curve_figure(results).axes
    assert axes[0].get_ylim() == (0, 1) and "n = 169" in axes[0].get_ylabel()
    assert axes[0].containers and axes[0].containers[0].has_yerr


def test_html_never_breaks_a_word_inside_itself(crafted):
    """break-all and anywhere let a narrow column cut "distinctiveness" into "distinctiven / ess"."""
    from fexprune.report.html import STYLE

    style = re.sub(r"/\*.*?\*/", "", STYLE, flags=re.S)  # the comments name what is not used
    assert "break-all" not in style and "anywhere" not in style and "hyphens: auto" not in style
    assert "overflow-wrap: break-word" in style
    assert '<div class="table-wrap"><table>' in render_html(crafted)  # a wide table scrolls instead


def test_every_kind_of_run_has_a_report_builder():
    from fexprune.kinds import KINDS
    from fexprune.report.build import BUILDERS

    assert set(BUILDERS) == set(KINDS)
