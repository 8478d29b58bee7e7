"""Figures of a comparison for papers: each written as a 300-dpi PNG and a vector PDF
(matplotlib without pyplot, so no display and no global state; TrueType fonts in the PDF, not
Type 3).

- ``<suite>_<group>.png|pdf``: one figure per metric group of the table's columns ("nlg":
  BLEU, METEOR, ROUGE-L, CIDEr; "ce": clinical efficacy; others by family), one panel per
  column, one bar per row (mean over seeds) with its 95% CI as a whisker; the significance
  marker (:mod:`uarbench.compare.cells`) sits above the whisker, inside the panel; reported
  rows hatched, without whiskers; "—" cells left out.
- ``<suite>_training.png|pdf``: training curves of the suite's trained rows from
  ``train_log.jsonl``, one curve per row: the mean over its seeds with a ± sd band (one seed: the
  curve alone). Training cross-entropy against the optimisation step (stage boundaries dashed)
  and validation BLEU-4 after every epoch (stage 1 epochs, then stage 2).

Layout is matplotlib's ``constrained`` engine (suptitle, panel titles and rotated tick labels
never overlap); long row names are rotated. Files are written atomically.
"""
from __future__ import annotations

import io
import itertools
import json
import math
import statistics
from pathlib import Path

from uarbench.compare.cells import metric_group
from uarbench.compare.table import TRAIN_LOG, Column, ComparisonTable
from uarbench.errors import UarbenchError
from uarbench.io import atomic_write_bytes

DPI = 300
FORMATS = ("png", "pdf")


def _figure(width: float, height: float):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    fig = Figure(figsize=(width, height), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def save_figure(fig, stem: Path, formats: tuple[str, ...] = FORMATS,
                dpi: int = DPI) -> list[Path]:
    """``stem``.png at ``dpi`` and ``stem``.pdf (vector, TrueType fonts, no creation date so
    that the same figure gives the same bytes); the paths written."""
    from matplotlib import rc_context
    out = []
    for fmt in formats:
        buf = io.BytesIO()
        metadata = {"Software": "uarbench"} if fmt == "png" else {
            "Creator": "uarbench", "CreationDate": None}
        with rc_context({"pdf.fonttype": 42}):
            fig.savefig(buf, format=fmt, dpi=dpi, metadata=metadata)
        out.append(atomic_write_bytes(stem.with_name(f"{stem.name}.{fmt}"), buf.getvalue()))
    return out


def _tick_labels(ax, names: list[str]) -> None:
    ax.set_xticks(range(len(names)))
    long = max((len(n) for n in names), default=0) > 6 or len(names) > 5
    ax.set_xticklabels(names, fontsize=8, rotation=35 if long else 0,
                       ha="right" if long else "center", rotation_mode="anchor")


def metric_groups(table: ComparisonTable) -> dict[str, list[Column]]:
    """Group name -> the table's columns in it, in column order."""
    groups: dict[str, list[Column]] = {}
    for c in table.columns:
        groups.setdefault(metric_group(c.metric), []).append(c)
    return groups


def metric_figure(table: ComparisonTable, columns: list[Column], group: str = ""):
    """One bar-chart panel per column with CI whiskers and significance markers above them."""
    n = max(len(columns), 1)
    nrows = math.ceil(n / 4)                # at most 4 panels a row, rows filled evenly
    ncols = math.ceil(n / nrows)
    fig = _figure(2.9 * ncols + 0.4, 2.7 * nrows + 0.5)
    names = [r.name for r in table.rows]
    for i, c in enumerate(columns):
        ax = fig.add_subplot(nrows, ncols, i + 1)
        tops = [0.0]
        for x, r in enumerate(table.rows):
            cell = table.cell(r.name, c.key)
            if cell.mean is None:
                continue
            err = None
            top = cell.mean
            if cell.ci is not None and r.kind == "measured":
                err = [[max(cell.mean - cell.ci[0], 0.0)], [max(cell.ci[1] - cell.mean, 0.0)]]
                top = max(cell.mean, cell.ci[1])
            ax.bar(x, cell.mean, yerr=err, capsize=3, width=0.7,
                   color="0.85" if r.kind == "reported" else f"C{x % 10}",
                   hatch="//" if r.kind == "reported" else None, edgecolor="0.3", lw=0.6,
                   error_kw={"lw": 0.9})
            tops.append(top)
            if cell.marker:
                # above the whisker's end, in points, so the marker never touches the whisker
                ax.annotate(cell.marker, (x, top), xytext=(0, 2), textcoords="offset points",
                            ha="center", va="bottom", fontsize=9, gid="significance")
        # headroom for the markers: they stay inside the panel, off the frame
        high = max(tops)
        ax.set_ylim(0, high * 1.18 if high > 0 else 1.0)
        ax.set_title(c.header, fontsize=9)
        ax.tick_params(axis="y", labelsize=8)
        ax.grid(axis="y", color="0.9", lw=0.6)
        ax.set_axisbelow(True)
        _tick_labels(ax, names)
    what = f"{group} metrics" if group else "metrics"
    fig.suptitle(f"{table.suite} on {table.dataset}: {what}, mean over seeds with "
                 f"{table.confidence:.0%} bootstrap CI; † / ‡ significantly better / worse "
                 f"than {table.baseline}", fontsize=9)
    return fig


def read_train_log(path: str | Path) -> tuple[list[dict], list[dict]]:
    """(per-step records, per-epoch validation records) of a train_log.jsonl."""
    steps, epochs = [], []
    from uarbench.io import jsonl_lines
    for i, line in enumerate(jsonl_lines(Path(path).read_text(encoding="utf-8")), 1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except json.JSONDecodeError as e:
            raise UarbenchError(f"not JSON ({e.msg}).", file=path, record=f"line {i}",
                                fix="re-run the run; the log is written by the trainer.") from None
        (epochs if "val_bleu4" in rec else steps).append(rec)
    return steps, epochs


def _mean_sd(series: list[list[float]]) -> tuple[list[float], list[float]]:
    """Mean and sample sd across seeds, point by point (sd 0 for one seed)."""
    means = [statistics.fmean(v) for v in zip(*series)]
    sds = [statistics.stdev(v) if len(v) > 1 else 0.0 for v in zip(*series)]
    return means, sds


def _band(ax, x: list[float], series: list[list[float]], colour: str, label: str,
          **line) -> None:
    mean, sd = _mean_sd(series)
    ax.plot(x, mean, color=colour, lw=1.2, label=label, **line)
    if len(series) > 1:
        ax.fill_between(x, [m - s for m, s in zip(mean, sd)], [m + s for m, s in zip(mean, sd)],
                        color=colour, alpha=0.25, lw=0)


def training_figure(table: ComparisonTable):
    """CE per step and val BLEU-4 per epoch of every trained row (mean ± sd band over its
    seeds); None when no row has a training log."""
    runs: dict[str, list[Path]] = {}
    for r in table.rows:
        logs = [Path(d) / TRAIN_LOG for d in r.run_dirs if (Path(d) / TRAIN_LOG).is_file()]
        if logs:
            runs[r.name] = logs
    if not runs:
        return None
    fig = _figure(10, 4.0)
    ce_ax, val_ax = fig.add_subplot(1, 2, 1), fig.add_subplot(1, 2, 2)
    boundaries: set[int] = set()
    for k, (row, logs) in enumerate(runs.items()):
        colour = f"C{k % 10}"
        ce: list[dict[int, float]] = []
        val: list[list[float]] = []
        for path in logs:
            steps, epochs = read_train_log(path)
            ce.append({int(s["step"]): float(s.get("ce", s.get("loss"))) for s in steps})
            val.append([float(e["val_bleu4"]) for e in epochs])
            for a, b in itertools.pairwise(steps):
                if a.get("stage") != b.get("stage"):
                    boundaries.add(int(b["step"]))
        label = f"{row} ({len(logs)} seeds, mean ± sd)" if len(logs) > 1 else row
        common = sorted(set.intersection(*(set(c) for c in ce)))      # steps every seed logged
        if common:
            _band(ce_ax, common, [[c[s] for s in common] for c in ce], colour, label)
        n_epochs = min(len(v) for v in val)
        if n_epochs:
            _band(val_ax, list(range(1, n_epochs + 1)), [v[:n_epochs] for v in val], colour,
                  label, marker="o", ms=3)
    for b in sorted(boundaries):
        ce_ax.axvline(b, color="0.5", ls="--", lw=0.8)
    ce_ax.set(xlabel="step", ylabel="training cross-entropy", title="training CE per step")
    from matplotlib.ticker import MaxNLocator
    val_ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    val_ax.set(xlabel="epoch (stage 1, then stage 2)", ylabel="val BLEU-4",
               title="validation BLEU-4 per epoch")
    for ax in (ce_ax, val_ax):
        ax.title.set_fontsize(9)
        ax.xaxis.label.set_fontsize(9)
        ax.yaxis.label.set_fontsize(9)
        ax.tick_params(labelsize=8)
        ax.grid(color="0.9", lw=0.6)
        if ax.lines:
            ax.legend(fontsize=7)
    fig.suptitle(f"{table.suite}: training curves (mean over seeds, band ± sd)", fontsize=9)
    return fig


def figures(table: ComparisonTable) -> dict[str, object]:
    """File stem -> figure: one per metric group, then the training curves if any."""
    out: dict[str, object] = {}
    for group, columns in metric_groups(table).items():
        out[f"{table.suite}_{group.lower()}"] = metric_figure(table, columns, group)
    training = training_figure(table)
    if training is not None:
        out[f"{table.suite}_training"] = training
    return out


def write_plots(table: ComparisonTable, out_dir: str | Path,
                formats: tuple[str, ...] = FORMATS, dpi: int = DPI) -> list[Path]:
    """Every figure of ``table`` into ``out_dir`` as PNG (``dpi``) and PDF; the paths."""
    paths: list[Path] = []
    for stem, fig in figures(table).items():
        paths += save_figure(fig, Path(out_dir) / stem, formats, dpi)
    return paths
