"""``uarbench compare``: a results folder into a leaderboard / paper table (one library call,
:func:`uarbench.compare.table.build_comparison`, then a writer and optionally the figures).

The table goes to ``--out`` or stdout; every status line ("wrote ...") and warning goes to
stderr, so ``uarbench compare results > table.md`` holds the table and nothing else."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

# the names registered in uarbench.compare.formats.FORMATS (kept here so that building the
# parser imports nothing heavy; a test checks that the two agree)
FORMAT_NAMES = ("md", "latex", "csv", "html", "json")
# formats shown with the compact metric set of uarbench.compare.cells.PAPER_METRICS unless
# --metrics or --all-metrics is given (the others carry every metric)
COMPACT_FORMATS = ("md", "latex")
CI_CHOICES = ("below", "inline", "none")      # uarbench.compare.cells.CI_PLACEMENTS


def add_compare_parser(sub, command=None) -> argparse.ArgumentParser:
    """Register ``compare`` on the ``uarbench`` sub-command parsers (``command``: the CLI's
    sub-parser factory, which adds the shared formatter, examples and logging options)."""
    from uarbench.compare.reported import REFERENCE_SETS
    help_text = ("leaderboard / paper table of a results folder (seed variance, CIs, "
                 "significance vs a baseline, signatures)")
    p = (command(sub, "compare", help=help_text) if command is not None
         else sub.add_parser("compare", help=help_text))
    p.add_argument("root", type=Path, help="results folder (<root>/<suite>/<run>/run.json) "
                   "or one suite's folder")
    p.add_argument("--suite", help="suite to tabulate (needed when the folder holds several)")
    p.add_argument("--baseline", metavar="ROW", help="row the significance tests compare "
                   "against (default: the suite's first trained row, else its first row)")
    p.add_argument("--format", choices=FORMAT_NAMES,
                   help="md: Markdown table; latex: a booktabs tabular FRAGMENT for "
                        "\\input{table} inside your paper's table environment (caption and "
                        "label are yours; needs \\usepackage{booktabs}), or a whole document "
                        "with --standalone; csv / json: every number; html: a sortable "
                        "offline leaderboard (default: from --out's suffix .md .tex .latex "
                        ".csv .json .html, else md)")
    p.add_argument("--out", type=Path, action="append",
                   help="file to write (default: print to stdout); repeat it for several "
                        "formats from one computation, e.g. --out t.md --out t.tex --out "
                        "t.html (each format from its suffix)")
    p.add_argument("--standalone", action="store_true",
                   help="latex only: a complete document that compiles with pdflatex (T1 "
                        "fonts + lmodern, booktabs, caption, legend and signatures below) "
                        "instead of the fragment (default: fragment)")
    p.add_argument("--ci", choices=CI_CHOICES, default="below",
                   help="where md / latex / html show the bootstrap CIs: on a line below "
                        "each row's values, inline after each value, or not at all "
                        "(default: below)")
    p.add_argument("--reference-rows", choices=REFERENCE_SETS.names(),
                   help="add the numbers reported in the paper for this suite and dataset")
    p.add_argument("--plots", type=Path, metavar="DIR",
                   help="also write figures here: one per metric group (NLG, CE, ...) and the "
                        "training curves, each as a 300-dpi PNG and a vector PDF")
    which = p.add_mutually_exclusive_group()
    which.add_argument("--metrics", help="comma-separated metric names or patterns, e.g. "
                       "'BLEU-*,CIDEr,CE-F1*': the only columns computed and shown, in every "
                       "format and figure (default: md, latex and figures show BLEU-1, "
                       "BLEU-4, METEOR, ROUGE-L, CIDEr and CE-F1 micro / macro over 14 "
                       "observations; html, csv and json show every metric)")
    which.add_argument("--all-metrics", action="store_true",
                       help="show every metric in md, latex and figures too (default: the "
                            "compact set above)")
    p.add_argument("--benchmark", type=Path, help="benchmark file giving the row order "
                   "(default: ./benchmark.toml)")
    from uarbench.conventions import CONVENTIONS
    p.add_argument("--convention", choices=CONVENTIONS.names(),
                   help="every row under this scoring convention: runs scored under another "
                        "are scored again from their predictions.jsonl (cached in "
                        "<run>/conventions/NAME/) (default: each run's own numbers)")
    p.add_argument("--no-significance", action="store_true",
                   help="skip bootstrap CIs and tests (fast)")
    p.add_argument("--resamples", type=int, default=1000, help="bootstrap resamples (1000)")
    p.add_argument("--trials", type=int, default=10000, help="randomization trials (10000)")
    p.add_argument("--seed", type=int, default=0, help="seed of resamples and trials (0)")
    p.add_argument("--alpha", type=float, default=0.05, help="family-wise level for Holm (0.05)")
    p.add_argument("--digits", type=int, default=4, help="decimals shown (4)")
    p.add_argument("--strict", action="store_true",
                   help="fail (exit 1, nothing written) when any run folder is incomplete, "
                        "damaged or duplicated, or a metric value is not a finite number; "
                        "without it these are notes in the table and warnings on stderr")
    p.set_defaults(func=cmd_compare)
    return p


def cmd_compare(args: argparse.Namespace) -> int:
    from uarbench.compare.cells import PAPER_METRICS, select_columns
    from uarbench.compare.formats import format_for, write_table
    from uarbench.compare.table import build_comparison
    from uarbench.errors import UarbenchError
    outs = args.out or [None]
    if len(outs) > 1 and args.format:
        raise UarbenchError("--format names one format, but several --out files were given.",
                            fix="drop --format: each file's format comes from its suffix.")
    formats = [format_for(out, args.format) for out in outs]
    if args.standalone and "latex" not in formats:
        raise UarbenchError(f"--standalone makes a LaTeX document, but the format is "
                            f"{', '.join(formats)}.",
                            fix="add --format latex (or --out FILE.tex), or drop --standalone.")
    metrics = [m.strip() for m in args.metrics.split(",") if m.strip()] if args.metrics else None
    table = build_comparison(args.root, args.suite, baseline=args.baseline,
                             reference_rows=args.reference_rows, metrics=metrics,
                             significance=not args.no_significance,
                             n_resamples=args.resamples, trials=args.trials, seed=args.seed,
                             alpha=args.alpha, benchmark=args.benchmark,
                             convention=args.convention)
    for problem in table.problems:
        print(f"uarbench: warning: {problem}", file=sys.stderr)
    if args.strict and table.problems:
        print(f"uarbench: error: --strict: {len(table.problems)} problem(s) in {args.root} "
              "(listed above); nothing written. Fix: repair or rerun those runs, or drop "
              "--strict.", file=sys.stderr)
        return 1
    compact = None if metrics or args.all_metrics else PAPER_METRICS
    for out, fmt in zip(outs, formats, strict=True):  # one table, resampled once, any formats
        options: dict = {}
        if fmt in ("md", "latex", "html"):
            options["ci"] = args.ci
        if fmt == "latex":
            options["standalone"] = args.standalone
        text = write_table(table, fmt, out, digits=args.digits,
                           metrics=compact if fmt in COMPACT_FORMATS else None, **options)
        if out is None:
            sys.stdout.write(text)
        else:
            print(f"wrote {out} ({fmt}: suite {table.suite}, {len(table.rows)} rows, "
                  f"baseline {table.baseline})", file=sys.stderr)
    if args.plots is not None:
        from uarbench.compare.plots import write_plots
        for path in write_plots(select_columns(table, compact), args.plots):
            print(f"wrote {path}", file=sys.stderr)
    return 0
