"""Figures for papers (``uarbench compare --plots DIR``): each figure as a 300-dpi PNG and a
vector PDF (no raster images, no Type 3 fonts), one figure per metric group, no overlapping
text (suptitle, panel titles, tick labels), significance markers above the CI whisker and
inside the panel, training curves with one mean line and a ± sd band per row."""
from __future__ import annotations

import dataclasses
import itertools
import re
import shutil
import subprocess

import pytest
from cmp_fixtures import cmp_results, cmp_table, lower_is_better  # noqa: F401 (pytest fixtures)

from uarbench.compare.cells import metric_group, select_columns
from uarbench.compare.plots import (
    figures,
    metric_figure,
    metric_groups,
    training_figure,
    write_plots,
)
from uarbench.compare.table import Column


@pytest.fixture(scope="module")
def written(cmp_table, tmp_path_factory):
    out = tmp_path_factory.mktemp("figs")
    return out, write_plots(cmp_table, out)


def test_each_figure_is_a_png_and_a_pdf(written):
    out, paths = written
    assert sorted(p.name for p in paths) == ["cmp_nlg.pdf", "cmp_nlg.png", "cmp_training.pdf",
                                             "cmp_training.png"]
    assert all(p.parent == out and p.stat().st_size > 1000 for p in paths)


def test_png_is_300_dpi(written):
    from PIL import Image
    _, paths = written
    for p in paths:
        if p.suffix == ".png":
            with Image.open(p) as im:
                assert im.info["dpi"] == pytest.approx((300, 300), abs=0.01)
                # a 300-dpi figure of several inches: thousands of pixels across
                assert im.size[0] >= 2000


def test_pdf_is_vector_with_embedded_truetype_fonts(written):
    _, paths = written
    for p in paths:
        if p.suffix != ".pdf":
            continue
        data = p.read_bytes()
        assert data.startswith(b"%PDF-") and b"Matplotlib pdf backend" in data
        assert b"/Subtype /Image" not in data          # no raster image XObject anywhere
        assert b"/Subtype /Type3" not in data          # text as TrueType (Type 42), not Type 3
        assert b"/FontFile2" in data                   # ... embedded
        if shutil.which("pdffonts"):
            listing = subprocess.run(["pdffonts", str(p)], capture_output=True, text=True,
                                     timeout=60, check=False).stdout
            assert "Type 3" not in listing and "TrueType" in listing, listing


def test_one_figure_per_metric_group(cmp_table):
    assert metric_group("BLEU-4") == metric_group("CIDEr") == metric_group("METEOR") == "NLG"
    assert metric_group("CE-F1[micro-14-unc1]") == "CE"
    assert metric_group("RadGraph-F1-partial") == "RadGraph"
    ce = Column("CE-F1[micro-14-unc1]", "CE-F1[micro-14-unc1]", "CE-F1|x")
    wider = dataclasses.replace(cmp_table, columns=cmp_table.columns + (ce,))
    assert list(metric_groups(wider)) == ["NLG", "CE"]
    assert list(figures(wider)) == ["cmp_nlg", "cmp_ce", "cmp_training"]
    # the compact paper set keeps the groups, fewer panels
    compact = select_columns(cmp_table, ["BLEU-1", "BLEU-4"])
    assert len(figures(compact)["cmp_nlg"].axes) == 2


def _drawn(fig):
    fig.canvas.draw()
    return fig.canvas.get_renderer()


def test_no_overlapping_text(cmp_table):
    for fig in figures(cmp_table).values():
        renderer = _drawn(fig)
        sup = fig._suptitle.get_window_extent(renderer)
        assert fig.bbox.contains(sup.x0, sup.y0) and fig.bbox.contains(sup.x1, sup.y1)
        titles = [ax.title.get_window_extent(renderer) for ax in fig.axes]
        for t in titles:
            assert not sup.overlaps(t), (sup, t)
        for i, ax in enumerate(fig.axes):
            ticks = [label.get_window_extent(renderer) for label in ax.get_xticklabels()
                     if label.get_text()]
            for a, b in itertools.pairwise(ticks):
                assert not a.overlaps(b), "x tick labels of one panel overlap"
            for j, t in enumerate(titles):       # a panel's tick labels vs other panels' titles
                if j != i:
                    assert not any(tick.overlaps(t) for tick in ticks)
                    assert not ax.bbox.overlaps(fig.axes[j].bbox)


def test_long_row_names_are_rotated(cmp_table):
    fig = metric_figure(cmp_table, list(cmp_table.columns[:1]))
    labels = fig.axes[0].get_xticklabels()
    assert [l.get_text() for l in labels] == [r.name for r in cmp_table.rows]
    assert all(l.get_rotation() > 0 and l.get_ha() == "right" for l in labels)


@pytest.mark.parametrize("tallest_marked", [False, True])
def test_significance_markers_sit_above_the_whisker_inside_the_panel(cmp_table,
                                                                     tallest_marked):
    if tallest_marked:          # the highest whisker carries a marker too: needs headroom
        cmp_table = dataclasses.replace(cmp_table, cells={
            k: dataclasses.replace(v, significant=True, better=True) if k[0] == "good" else v
            for k, v in cmp_table.cells.items()})
    fig = metric_figure(cmp_table, list(cmp_table.columns), "NLG")
    renderer = _drawn(fig)
    names = [r.name for r in cmp_table.rows]
    seen = 0
    for ax, column in zip(fig.axes, cmp_table.columns):
        marks = [t for t in ax.texts if t.get_gid() == "significance"]
        expected = {n for n in names if cmp_table.cell(n, column.key).marker}
        assert {names[round(m.xy[0])] for m in marks} == expected
        for m in marks:
            cell = cmp_table.cell(names[round(m.xy[0])], column.key)
            assert m.get_text() == cell.marker
            whisker_top = ax.transData.transform((m.xy[0], cell.ci[1]))[1]
            box = m.get_window_extent(renderer)
            assert m.xy[1] == pytest.approx(cell.ci[1])
            assert box.y0 > whisker_top                 # above the whisker's end ...
            assert box.y1 < ax.bbox.y1                  # ... and below the frame's top
            seen += 1
    assert seen >= (12 if tallest_marked else 6)        # the floor is worse in every column


def test_training_curves_are_one_mean_line_and_a_band_per_row(cmp_table):
    from matplotlib.collections import PolyCollection
    fig = training_figure(cmp_table)
    ce_ax, val_ax = fig.axes
    trained = [r for r in cmp_table.rows if r.trained and r.run_dirs]
    assert len(trained) == 3 and sum(len(r.run_dirs) for r in trained) == 7
    for ax in (ce_ax, val_ax):
        curves = [l for l in ax.lines if not l.get_label().startswith("_")]
        assert len(curves) == len(trained)           # one line per row, not per seed
        bands = [c for c in ax.collections if isinstance(c, PolyCollection)]
        assert len(bands) == len(trained)            # every row here has 2-3 seeds
        assert all(re.search(r"\(\d seeds, mean ± sd\)", l.get_label()) for l in curves)
    # val BLEU-4 of "good": 0.10 / 0.11 after epoch 1 (seed 0 / 1), 0.15 after epoch 2
    good = next(l for l in val_ax.lines if l.get_label().startswith("good "))
    assert list(good.get_ydata()) == pytest.approx([0.105, 0.15])
