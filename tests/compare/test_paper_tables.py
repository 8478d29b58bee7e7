"""Tables for papers (``uarbench compare --format latex|md``): a LaTeX fragment for ``\\input`` by
default and a compilable document with ``--standalone``, the best value of each column in bold
by the metric's direction, ± sd for rows with seeds, the CIs below / inline / not at all, a
compact default metric set (``--metrics`` and ``--all-metrics`` override it), ``.tex`` and
``.latex`` both LaTeX, status lines on stderr only; and, where TeX Live is installed, the
fragment \\input into a minimal document and the standalone document compiled with pdflatex
without Type 3 (bitmap) fonts."""
from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess

import pytest
from cmp_fixtures import cmp_results, cmp_table, lower_is_better  # noqa: F401 (pytest fixtures)

from uarbench.compare.cells import PAPER_METRICS, best_rows, select_columns
from uarbench.compare.cli import add_compare_parser
from uarbench.compare.formats import format_for, to_markdown, write_table
from uarbench.errors import UarbenchError

COMMON = ["--resamples", "100", "--trials", "500"]


def run_cli(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="uarbench")
    add_compare_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(argv)
    return args.func(args)


def tex_code(tex: str) -> list[str]:
    """The lines TeX reads (the footer rides along as comment lines)."""
    return [l for l in tex.splitlines() if not l.startswith("%")]


def body_row(tex: str, label: str) -> list[str]:
    """The cells of the tabular row whose first cell is ``label``."""
    line = next(l for l in tex_code(tex) if l.split(" & ")[0] == label)
    return [c.strip() for c in line.removesuffix(r"\\").split(" & ")]


def header(tex: str) -> list[str]:
    code = tex_code(tex)
    return [c.strip() for c in code[code.index(r"\toprule") + 1].removesuffix(r"\\").split(" & ")]


def test_latex_default_is_a_fragment_for_input(cmp_table):
    tex = write_table(cmp_table, "latex")
    code = tex_code(tex)
    assert code[0].startswith(r"\begin{tabular}") and code[-1] == r"\end{tabular}"
    for whole_document_only in (r"\documentclass", r"\begin{document}", r"\usepackage",
                                r"\begin{table}", r"\caption", r"\resizebox"):
        assert whole_document_only not in "\n".join(code)
    assert [r"\toprule", r"\midrule", r"\bottomrule"] == [l for l in code if l in (
        r"\toprule", r"\midrule", r"\bottomrule")]
    # the legend and the signatures travel with the file, as comments
    assert "% Metric signatures:" in tex and "BLEU-4|conv:r2gen|clean:r2gen-iu" in tex
    assert "\\input it inside a table environment" in tex


def test_latex_standalone_is_a_document_with_t1_lmodern_booktabs_and_no_resizebox(cmp_table):
    tex = write_table(cmp_table, "latex", standalone=True)
    code = tex_code(tex)
    for line in (r"\documentclass{article}", r"\usepackage[T1]{fontenc}",
                 r"\usepackage{lmodern}", r"\usepackage{booktabs}", r"\begin{document}",
                 r"\end{document}"):
        assert line in code, line
    assert r"\resizebox" not in tex and r"\scalebox" not in tex
    assert r"\caption{Suite cmp on synth-cxr; baseline good.}" in code
    assert r"\textbf{Metric signatures.}" in code


def test_best_value_per_column_is_bold_and_direction_aware(cmp_table, lower_is_better):
    tex = write_table(cmp_table, "latex", ci="none")
    good, copy, constant = (body_row(tex, n) for n in ("good (baseline)", "copy", "constant"))
    col = header(tex).index(r"BLEU-4 $\uparrow$")
    # good and copy tie for the best BLEU-4 (same outputs): both bold; the floor is not
    assert good[col].startswith(r"\textbf{") and copy[col].startswith(r"\textbf{")
    assert not constant[col].startswith(r"\textbf{")
    assert best_rows(cmp_table, cmp_table.column("BLEU-4")) == {"good", "copy"}
    # read as lower-is-better, the lowest value (the constant floor) is the best
    flipped = lower_is_better(cmp_table, "BLEU-4")
    assert best_rows(flipped, flipped.column("BLEU-4")) == {"constant"}
    tex = write_table(flipped, "latex", ci="none")
    col = header(tex).index(r"BLEU-4 $\downarrow$")
    assert body_row(tex, "constant")[col].startswith(r"\textbf{")
    assert not body_row(tex, "good (baseline)")[col].startswith(r"\textbf{")
    md = write_table(flipped, "md", ci="none")
    line = next(l for l in md.splitlines() if l.startswith("| constant "))
    assert "**0.1451**" in line                                 # BLEU-4 of the floor


def test_a_column_where_every_row_ties_has_no_bold(cmp_table):
    import dataclasses

    from uarbench.compare.table import Cell
    cells = {k: (Cell(mean=0.5, n_seeds=1, values=(0.5,)) if k[1] == "CIDEr" else v)
             for k, v in cmp_table.cells.items()}
    tied = dataclasses.replace(cmp_table, cells=cells)
    assert best_rows(tied, tied.column("CIDEr")) == frozenset()


def test_rows_with_seeds_show_mean_pm_sd_and_a_seeds_column(cmp_table):
    tex = write_table(cmp_table, "latex", ci="none")
    assert header(tex)[:2] == ["Model", "Seeds"]
    partial = body_row(tex, "partial")
    cell = cmp_table.cell("partial", "BLEU-4")
    assert partial[1] == "3"
    assert f"{cell.mean:.4f} $\\pm$ {cell.sd:.4f}" in partial[header(tex).index(
        r"BLEU-4 $\uparrow$")]
    assert "---" in partial[header(tex).index(r"ROUGE-L $\uparrow$")]   # missing in a seed


def table_lines(text: str, fmt: str) -> list[str]:
    """The lines of the table proper (no comments, no footer)."""
    return tex_code(text) if fmt == "latex" else text.split("**Legend")[0].splitlines()


@pytest.mark.parametrize("fmt", ["latex", "md"])
def test_ci_below_inline_or_none(cmp_table, fmt):
    cell = cmp_table.cell("good", "BLEU-4")
    interval = f"[{cell.ci[0]:.4f}, {cell.ci[1]:.4f}]"
    first = "good (baseline) & " if fmt == "latex" else "| good (baseline) "

    def good_lines(ci: str) -> tuple[str, str]:
        lines = table_lines(write_table(cmp_table, fmt, ci=ci), fmt)
        i = next(i for i, l in enumerate(lines) if l.startswith(first))
        return lines[i], lines[i + 1]
    row, under = good_lines("below")
    assert interval not in row and interval in under
    assert under.startswith(" & " if fmt == "latex" else "| ↳ 95% CI ")
    if fmt == "latex":
        assert r"{\scriptsize [" in under
    row, under = good_lines("inline")
    assert interval in row and under.lstrip("| ").startswith("copy ")     # no CI line
    text = write_table(cmp_table, fmt, ci="none")
    assert "[0." not in "\n".join(table_lines(text, fmt)) and "CIs: not shown here" in text
    # one CI line per row that has a CI (not the failed run's)
    lines = table_lines(write_table(cmp_table, fmt, ci="below"), fmt)
    assert sum("[0." in l or "[8." in l for l in lines) == 4


def test_bad_ci_placement_is_an_error(cmp_table):
    with pytest.raises(UarbenchError, match="unknown CI placement"):
        write_table(cmp_table, "latex", ci="sideways")
    with pytest.raises(UarbenchError, match="takes no option 'ci'"):
        write_table(cmp_table, "csv", ci="below")


def test_compact_metric_set_is_a_view_with_a_note(cmp_table):
    view = select_columns(cmp_table, PAPER_METRICS)
    assert [c.key for c in view.columns] == ["BLEU-1", "BLEU-4", "ROUGE-L", "CIDEr"]
    assert view.cells is cmp_table.cells and view.holm_m == cmp_table.holm_m
    assert set(view.test_signatures) == {"BLEU-1", "BLEU-4", "ROUGE-L", "CIDEr"}
    assert any("Columns shown: 4 of 6; left out: BLEU-2, BLEU-3" in n for n in view.notes)
    assert select_columns(cmp_table, None) is cmp_table
    assert select_columns(cmp_table, ["nothing-like-this"]) is cmp_table
    ce = select_columns(cmp_table, ["CE-F1[micro-14-*"])
    assert ce is cmp_table                  # nothing matched: every column stays


def test_cli_md_and_latex_default_to_the_compact_set(cmp_results, tmp_path, capsys):
    root, bench = cmp_results
    base = [str(root), "--benchmark", str(bench), *COMMON]
    assert run_cli(["compare", *base, "--out", str(tmp_path / "t.latex")]) == 0
    tex = (tmp_path / "t.latex").read_text()
    assert header(tex) == ["Model", "Seeds", r"BLEU-1 $\uparrow$", r"BLEU-4 $\uparrow$",
                           r"ROUGE-L $\uparrow$", r"CIDEr $\uparrow$"]
    assert tex_code(tex)[0].startswith(r"\begin{tabular}")
    assert run_cli(["compare", *base]) == 0
    md = capsys.readouterr().out.split("**Legend")[0]
    assert "BLEU-1 ↑" in md and "BLEU-2" not in md and "BLEU-3" not in md
    # --all-metrics: every column; --metrics: exactly those
    assert run_cli(["compare", *base, "--all-metrics", "--format", "latex"]) == 0
    assert len(header(capsys.readouterr().out)) == 2 + 6
    assert run_cli(["compare", *base, "--metrics", "BLEU-2,CIDEr", "--format", "latex"]) == 0
    assert header(capsys.readouterr().out)[2:] == [r"BLEU-2 $\uparrow$", r"CIDEr $\uparrow$"]
    # html, csv and json carry every metric
    assert run_cli(["compare", *base, "--format", "html"]) == 0
    assert "BLEU-3 ↑" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        run_cli(["compare", *base, "--metrics", "BLEU-1", "--all-metrics"])


def test_cli_status_lines_go_to_stderr_never_into_the_table(cmp_results, tmp_path, capsys):
    root, bench = cmp_results
    base = [str(root), "--benchmark", str(bench), *COMMON, "--no-significance"]
    assert run_cli(["compare", *base, "--plots", str(tmp_path / "figs")]) == 0
    out, err = capsys.readouterr()
    assert out.startswith("### Suite `cmp`") and "wrote" not in out and ".png" not in out
    assert err.count("wrote ") == 4 and "cmp_nlg.pdf" in err
    assert run_cli(["compare", *base, "--out", str(tmp_path / "t.md")]) == 0
    out, err = capsys.readouterr()
    assert out == "" and f"wrote {tmp_path / 't.md'}" in err
    assert "wrote" not in (tmp_path / "t.md").read_text()


def test_several_outputs_come_from_one_computation(cmp_results, tmp_path, monkeypatch, capsys):
    """--out repeated: each file in the format of its suffix, the table (CIs, tests) built once."""
    import uarbench.compare.table as table_module
    root, bench = cmp_results
    built = []
    real = table_module.build_comparison
    monkeypatch.setattr(table_module, "build_comparison",
                        lambda *a, **kw: built.append(1) or real(*a, **kw))
    outs = [tmp_path / "t.md", tmp_path / "t.tex", tmp_path / "t.html", tmp_path / "t.json"]
    args = ["compare", str(root), "--benchmark", str(bench), "--resamples", "50", "--trials", "50"]
    assert run_cli([*args, *(x for o in outs for x in ("--out", str(o)))]) == 0
    assert len(built) == 1
    assert outs[0].read_text().startswith("### Suite") and r"\toprule" in outs[1].read_text()
    assert outs[2].read_text().lstrip().lower().startswith("<!doctype html")
    assert json.loads(outs[3].read_text())["suite"] == "cmp"
    assert capsys.readouterr().err.count("wrote ") == 4
    with pytest.raises(UarbenchError, match="several --out"):
        run_cli([*args, "--format", "md", "--out", str(outs[0]), "--out", str(outs[1])])


def test_tex_and_latex_suffixes_and_standalone_only_for_latex(cmp_results, tmp_path):
    assert format_for("paper/table.tex", None) == format_for("table.LATEX", None) == "latex"
    root, bench = cmp_results
    with pytest.raises(UarbenchError, match="--standalone makes a LaTeX document"):
        run_cli(["compare", str(root), "--benchmark", str(bench), "--no-significance",
                 "--standalone", "--out", str(tmp_path / "t.md")])
    assert not (tmp_path / "t.md").exists()
    assert run_cli(["compare", str(root), "--benchmark", str(bench), "--no-significance",
                    "--standalone", "--out", str(tmp_path / "t.tex")]) == 0
    assert r"\documentclass{article}" in (tmp_path / "t.tex").read_text()


# --- compiled with TeX Live (texlive-latex-base + texlive-latex-recommended + lmodern,
# poppler-utils for pdffonts; .ci/run installs them where apt-get is available) ---

def _tex_tools_missing() -> str | None:
    missing = [t for t in ("pdflatex", "pdffonts", "kpsewhich") if shutil.which(t) is None]
    if missing:
        return (f"{', '.join(missing)} not installed (Debian: apt-get install "
                "texlive-latex-base texlive-latex-recommended lmodern poppler-utils)")
    for sty in ("booktabs.sty", "lmodern.sty"):
        found = subprocess.run(["kpsewhich", sty], capture_output=True, text=True,
                               check=False).stdout
        if not found.strip():
            return f"{sty} not found by kpsewhich (Debian: texlive-latex-recommended, lmodern)"
    return None


needs_tex = pytest.mark.skipif(_tex_tools_missing() is not None,
                               reason=str(_tex_tools_missing()))

MINIMAL = r"""\documentclass{article}
\usepackage[T1]{fontenc}
\usepackage{lmodern}
\usepackage{booktabs}
\begin{document}
Results are in Table~\ref{tab:results}.
\begin{table}[htbp]
\centering
\small
\caption{Our results.}
\label{tab:results}
\input{table}
\end{table}
\end{document}
"""


def pdflatex(folder, name: str) -> str:
    """Compile ``name``.tex in ``folder``; the pdffonts listing of the PDF."""
    for _ in range(2):                           # twice, as a paper is (references)
        proc = subprocess.run(["pdflatex", "-interaction=nonstopmode", "-halt-on-error",
                               f"{name}.tex"], cwd=folder, capture_output=True, text=True,
                              timeout=180, check=False)
        assert proc.returncode == 0, proc.stdout[-3000:]
    fonts = subprocess.run(["pdffonts", f"{name}.pdf"], cwd=folder, capture_output=True,
                           text=True, timeout=60, check=False)
    assert fonts.returncode == 0, fonts.stderr
    return fonts.stdout


def font_types(listing: str) -> list[str]:
    rows = listing.splitlines()[2:]              # after the header and the dashes
    return [r for r in rows if r.strip()]


@needs_tex
def test_fragment_inputs_into_a_paper_and_has_no_type3_fonts(cmp_table, tmp_path):
    write_table(cmp_table, "latex", tmp_path / "table.tex")
    (tmp_path / "paper.tex").write_text(MINIMAL)
    listing = pdflatex(tmp_path, "paper")
    rows = font_types(listing)
    assert rows, listing
    assert not [r for r in rows if "Type 3" in r], listing
    assert any("LMRoman" in r for r in rows), listing
    log = (tmp_path / "paper.log").read_text(errors="replace")
    assert "(./table.tex" in log and "undefined references" not in log
    assert "Bold" in listing                     # the best values are set in bold


@needs_tex
@pytest.mark.parametrize("extra", [{}, {"ci": "inline"}])
def test_standalone_compiles_without_type3_fonts_or_overfull_table(cmp_table, tmp_path, extra):
    write_table(cmp_table, "latex", tmp_path / "doc.tex", standalone=True, **extra)
    listing = pdflatex(tmp_path, "doc")
    assert not [r for r in font_types(listing) if "Type 3" in r], listing
    log = (tmp_path / "doc.log").read_text(errors="replace")
    # the page is made as wide as the table: the tabular itself never overflows
    assert not re.search(r"Overfull \\hbox \([0-9.]+pt too wide\) in alignment", log), log[-3000:]


@pytest.fixture(scope="module")
def reported_table(tmp_path_factory):
    """Suite ``ablations`` on iu_xray (one seed each of base and uar) with the paper's rows."""
    from test_table import FAST, degrade, references, write_run

    from uarbench.compare.table import build_comparison
    root = tmp_path_factory.mktemp("reported")
    refs = references()
    for row, every in (("base", 2), ("uar", 3)):
        write_run(root, "ablations", row, 0, degrade(refs, every), refs, trained=True,
                  dataset="iu_xray")
    return build_comparison(root, reference_rows="paper", **FAST)


def test_reported_rows_sit_below_a_rule_and_are_never_bold(reported_table):
    tex = write_table(reported_table, "latex", ci="none")
    code = tex_code(tex)
    rules = [i for i, l in enumerate(code) if l == r"\midrule"]
    assert len(rules) == 2                                   # header rule, then reported block
    assert code[rules[1] + 1].startswith("Base (reported) & ")
    assert code[rules[1] - 1].startswith("uar & ")
    # the paper's numbers beat ours here, yet bold marks the best *measured* value
    col = header(tex).index(r"BLEU-1 $\uparrow$")
    assert not any(r"\textbf" in body_row(tex, label)[col] for label in (
        "(a) +LSU (reported)", "UAR (two-stage) (reported)"))
    assert sum(r"\textbf" in l.split(" & ")[col] for l in code if " & " in l) == 1
    assert "% Sources:" in tex and "reported in Li et al. ICCV 2023 (IU-Xray test)" in tex
    page = write_table(reported_table, "html")
    assert '<tbody class="reported">' in page and page.count('class="num best"') == len(
        reported_table.columns)


@needs_tex
def test_standalone_with_reported_rows_compiles(reported_table, tmp_path):
    write_table(reported_table, "latex", tmp_path / "doc.tex", standalone=True)
    listing = pdflatex(tmp_path, "doc")
    assert not [r for r in font_types(listing) if "Type 3" in r], listing


def test_a_floor_run_per_seed_shows_deterministic_not_plus_minus_zero(cmp_table):
    """Issue 15: floors do not depend on the seed; results written with one floor run per seed
    (older suites) still show one number and 'deterministic' in the Seeds column."""
    from uarbench.compare.cells import DETERMINISTIC, seeds_text, value_text
    floor = next(r for r in cmp_table.rows if r.name == "constant")
    assert len(floor.seeds) == 2 and not floor.trained
    assert seeds_text(floor) == DETERMINISTIC
    good = next(r for r in cmp_table.rows if r.name == "good")
    assert seeds_text(good) == "2"
    broken = next(r for r in cmp_table.rows if r.name == "broken")  # no complete run: not a floor
    assert seeds_text(broken) == str(len(broken.seeds)) != DETERMINISTIC
    for column in cmp_table.columns:
        cell = cmp_table.cell("constant", column.key)
        if cell.mean is not None:
            assert "±" not in value_text(cell)
    md = to_markdown(cmp_table)
    line = next(l for l in md.splitlines() if l.startswith("| constant"))
    assert DETERMINISTIC in line and "± 0.0000" not in line
