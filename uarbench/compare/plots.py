"""Figures of a comparison (PNG, matplotlib without pyplot, so no display and no global state):

- ``<suite>_metrics.png``: one panel per metric column, one bar per row (mean over seeds) with
  its 95% CI as error bars; reported rows hatched, without error bars; "—" cells left out.
- ``<suite>_training.png``: training curves of the suite's trained runs from
  ``train_log.jsonl``: training cross-entropy against the optimisation step (stage boundaries
  dashed) and validation BLEU-4 after every epoch (stage 1 epochs, then stage 2).

Files are written atomically. Hand-written: the layout is ours, the drawing is matplotlib's.
"""
from __future__ import annotations

import io
import json
import math
from pathlib import Path

from uarbench.compare.table import TRAIN_LOG, ComparisonTable
from uarbench.errors import UarbenchError
from uarbench.io import atomic_write_bytes


def _figure(width: float, height: float):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    fig = Figure(figsize=(width, height), dpi=100)
    FigureCanvasAgg(fig)
    return fig


def _save(fig, path: Path) -> Path:
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return atomic_write_bytes(path, buf.getvalue())


def metric_bars(table: ComparisonTable, out_dir: str | Path) -> Path:
    """One bar chart panel per metric column with CI error bars; returns the PNG path."""
    cols = list(table.columns)
    n = max(len(cols), 1)
    ncols = min(4, n)
    nrows = math.ceil(n / ncols)
    fig = _figure(4.2 * ncols, 3.2 * nrows + 0.6)
    names = [r.name for r in table.rows]
    for i, c in enumerate(cols):
        ax = fig.add_subplot(nrows, ncols, i + 1)
        for x, r in enumerate(table.rows):
            cell = table.cell(r.name, c.key)
            if cell.mean is None:
                continue
            err = None
            if cell.ci is not None:
                err = [[max(cell.mean - cell.ci[0], 0.0)], [max(cell.ci[1] - cell.mean, 0.0)]]
            ax.bar(x, cell.mean, yerr=err, capsize=3,
                   color="0.8" if r.kind == "reported" else f"C{x % 10}",
                   hatch="//" if r.kind == "reported" else None, edgecolor="0.3")
            if cell.marker:
                ax.annotate(cell.marker, (x, cell.ci[1] if cell.ci else cell.mean),
                            ha="center", va="bottom")
        ax.set_title(c.header, fontsize=9)
        ax.set_xticks(range(len(names)))
        ax.set_xticklabels(names, rotation=45, ha="right", fontsize=7)
    fig.suptitle(f"{table.suite} on {table.dataset}: mean over seeds, "
                 f"{table.confidence:.0%} bootstrap CI; baseline {table.baseline}", fontsize=10)
    fig.tight_layout()
    return _save(fig, Path(out_dir) / f"{table.suite}_metrics.png")


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


def training_curves(table: ComparisonTable, out_dir: str | Path) -> Path | None:
    """CE vs step and val BLEU-4 per epoch of every trained run; None when there is none."""
    logs = [(Path(d).name, Path(d) / TRAIN_LOG) for r in table.rows for d in r.run_dirs
            if (Path(d) / TRAIN_LOG).is_file()]
    if not logs:
        return None
    fig = _figure(11, 4.2)
    ce_ax, val_ax = fig.add_subplot(1, 2, 1), fig.add_subplot(1, 2, 2)
    boundaries: set[int] = set()
    for k, (run, path) in enumerate(logs):
        steps, epochs = read_train_log(path)
        colour = f"C{k % 10}"
        ce_ax.plot([s["step"] for s in steps], [s.get("ce", s.get("loss")) for s in steps],
                   color=colour, lw=1, label=run)
        for a, b in zip(steps, steps[1:]):
            if a.get("stage") != b.get("stage"):
                boundaries.add(int(b["step"]))
        val_ax.plot(range(1, len(epochs) + 1), [e["val_bleu4"] for e in epochs], marker="o",
                    color=colour, label=run)
    for b in sorted(boundaries):
        ce_ax.axvline(b, color="0.5", ls="--", lw=0.8)
    ce_ax.set(xlabel="step", ylabel="training cross-entropy", title="training CE per step")
    from matplotlib.ticker import MaxNLocator
    val_ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    val_ax.set(xlabel="epoch (stage 1, then stage 2)", ylabel="val BLEU-4",
               title="validation BLEU-4 per epoch")
    for ax in (ce_ax, val_ax):
        ax.legend(fontsize=7)
    fig.suptitle(f"{table.suite}: training curves", fontsize=10)
    fig.tight_layout()
    return _save(fig, Path(out_dir) / f"{table.suite}_training.png")


def write_plots(table: ComparisonTable, out_dir: str | Path) -> list[Path]:
    """Every figure of ``table`` into ``out_dir``; the paths written."""
    out = [metric_bars(table, out_dir)]
    curves = training_curves(table, out_dir)
    return out + ([curves] if curves is not None else [])
