"""report.md from saved results: per-batch-size optima, fitted laws, figures, the three answers.

python -m analysis.report DIR... [--out DIR/_analysis/report.md] [--skip-bad]
                         [--metric loss|accuracy]
"""

from __future__ import annotations

import sys
from pathlib import Path

from analysis.cli import run


def write_report(
    paths,
    out: str | Path | None = None,
    skip_bad: bool = False,
    n_boot: int = 1000,
    formats=None,
    by: str = "loss",
) -> Path:
    """Draw the figures (in `formats`, default analysis.figures_base.FORMATS) and write report.md
    (default: <common dir of paths>/_analysis/report.md)."""
    from analysis.pipeline import analyse

    paths = [paths] if isinstance(paths, str | Path) else list(paths)
    return _write(analyse(paths, skip_bad=skip_bad, n_boot=n_boot, by=by), paths, out, formats)


def _write(a, paths, out, formats=None) -> Path:
    """The figures beside the report (`a`: an analysis.pipeline.Analysis), then the report
    itself, written whole or not at all (analysis.output.OutputError naming the path where
    either cannot be written)."""
    from analysis import figures, figures_base, output, tables
    from analysis.output import OutputError
    from analysis.pipeline import REPORT, out_dir
    from analysis.report_sections import shown
    from analysis.report_text import TITLE, render

    path = Path(out) if out else out_dir(paths, REPORT)
    if path.is_dir():
        raise OutputError(
            f"{path}: is a directory; --out names the report file, e.g. {path / 'report.md'}"
        )
    if path.suffix != ".md":
        raise OutputError(f"{path}: --out names the report, a markdown file (.md)")
    if path.exists() and not path.read_text(errors="replace").startswith(TITLE):
        raise OutputError(
            f"{path}: exists and is not a report of lrscale's; nothing was changed: choose "
            "another --out"
        )
    tables.check(a, path.parent, "the report")
    figs = figures.draw(a, path.parent / "figures", formats or figures_base.FORMATS)
    tables.write(a, path.parent)  # the tables the report is written from
    text = render(a, figs, path.parent, [shown(p) for p in paths])
    return output.write_text(path, text, "the report")


def main(argv=None) -> int:
    def body(args, a):
        from analysis.pipeline import REPORT, out_dir

        out = args.out or out_dir(args.paths, REPORT)
        print(f"wrote {_write(a, args.paths, out, args.format.split(','))}")

    return run(
        argv,
        "analysis.report",
        "Write report.md (tables, fitted laws, figures, answers) for the given results.",
        body,
        "report file (default: <common dir of the inputs>/_analysis/report.md)",
    )


if __name__ == "__main__":
    sys.exit(main())
