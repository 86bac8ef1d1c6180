"""`neuromodmap evidence ...` commands: the extraction-sheet template and the meta-analysis."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console

app = typer.Typer(help="Evidence: extraction sheet and metafor-grade meta-analysis.", no_args_is_help=True)
_err = Console(stderr=True)
_out = Console()


def _fail(message: str) -> None:
    """A user error: one line, exit 2 (printed by the root command's handler, :mod:`neuromodmap.errors`)."""
    from neuromodmap.errors import UserError

    raise UserError(message)


@app.command()
def template(
    output: Path = typer.Option(..., "-o", "--output", help="Sheet to write: .xlsx (with a dictionary sheet) or .csv "
                                "(with a .dictionary.csv beside it)."),
    force: bool = typer.Option(False, "--force", help="Overwrite an existing file."),
) -> None:
    """Write an empty extraction sheet with its data dictionary."""
    from neuromodmap.evidence._errors import SheetError
    from neuromodmap.evidence._io import write_template

    if output.exists() and not force:
        _fail(f"{output} exists; pass --force to overwrite it")
    try:
        written = write_template(output)
    except (SheetError, OSError) as exc:
        _fail(str(exc))
    for path in written:
        _out.print(f"wrote {path}", highlight=False)


@app.command()
def meta(
    sheet: Path = typer.Argument(..., help="Extraction sheet (.xlsx or .csv)."),
    measure: str = typer.Option("SMD", "--measure", "-m", help="SMD, MD, RR, OR, RD, PLO, PR or PFT."),
    by: str = typer.Option("modality", "--by", help="Subgroup column (modality, target, indication, design, "
                           "sham_type, outcome_measure, condition, subgroup) or 'none'. A value shared by every "
                           "row gives one model without subgroups."),
    output: Path = typer.Option(..., "-o", "--output", help="Output directory."),
    method: str = typer.Option("REML", "--method", help="tau² estimator: REML, ML, DL, PM, HE, SJ, HS, HSk, EB or EE (metafor's names)."),
    test: str = typer.Option("z", "--test", help="'z' (Wald) or 'knha' (Hartung-Knapp)."),
    outcome: str = typer.Option("responders", "--outcome", help="Counts for RR/OR/RD/PLO/PR/PFT: responders or "
                                "remitters."),
    level: float = typer.Option(95.0, "--level", help="Confidence level (%)."),
    sheet_name: str = typer.Option(None, "--sheet", help="Worksheet to read in an .xlsx file."),
    skip_invalid: bool = typer.Option(False, "--skip-invalid", help="Drop bad rows (listed in the report) "
                                      "instead of stopping."),
    moderator: str = typer.Option(None, "--moderator", help="'connectivity': meta-regression of the effects on "
                                  "each study site's connectivity to --seed (site = the sheet's x,y,z or the "
                                  "target's catalogue coordinate)."),
    seed: str = typer.Option(None, "--seed", help="Seed for --moderator connectivity, MNI 'x,y,z' "
                             "(default: the Fox 2012 sgACC, 6,16,-10)."),
    cluster_robust: bool = typer.Option(False, "--robust", help="Three-level fits (several rows per study): "
                                        "cluster-robust CR1 tests and CIs by study (metafor's robust())."),
    connectome: str = typer.Option(None, "--connectome", help="Connectome for --moderator connectivity "
                                   "(default enigma-schaefer400; see `neuromodmap connectome list`)."),
) -> None:
    """Validate a sheet, compute effect sizes, pool per subgroup and write tables, plots, HTML and methods.

    Several rows of one study (same study_id) are pooled with a three-level model (metafor's rma.mv).
    """
    from neuromodmap.connectome._errors import ConnectomeError
    from neuromodmap.evidence._errors import MetaAnalysisError, SheetError
    from neuromodmap.evidence.pipeline import SheetValidationError, run_meta

    if not 50 < level < 100:
        _fail(f"--level must be between 50 and 100, got {level}")
    seed_xyz = None
    if seed is not None:
        try:
            seed_xyz = tuple(float(v) for v in seed.split(","))
        except ValueError:
            seed_xyz = ()
        if len(seed_xyz) != 3:
            _fail(f"--seed must be three numbers x,y,z (MNI mm), got {seed!r}")
    if (seed is not None or connectome is not None) and moderator is None:
        _fail("--seed and --connectome go with --moderator connectivity")
    try:
        report = run_meta(sheet, measure=measure, by=None if by.lower() == "none" else by, method=method,
                          test=test, level=level, outcome=outcome, sheet_name=sheet_name,
                          skip_invalid=skip_invalid, moderator=moderator, seed=seed_xyz, connectome=connectome,
                          cluster_robust=cluster_robust)
    except SheetValidationError as exc:
        # one line per bad cell, naming the file, row and column; the last line says what to do
        for p in exc.problems[:-1]:
            _err.print(f"{exc.path}, {p}" + ("" if p.value is None else f" (value {p.value!r:.40})"),
                       markup=False, highlight=False, soft_wrap=True)
        last = exc.problems[-1]
        _fail(f"{exc.path}, {last}" + ("" if last.value is None else f" (value {last.value!r:.40})")
              + f"; fix {'these cells' if len(exc.problems) > 1 else 'the cell'} (or pass --skip-invalid to drop "
              "the rows) and run again")
    except (SheetError, MetaAnalysisError) as exc:
        _fail(str(exc))
    except ConnectomeError as exc:
        _fail(f"--moderator connectivity: {exc}")
    except OSError as exc:
        _fail(f"cannot read {sheet}: {exc.strerror or exc}")
    try:
        written = report.write(output)
    except OSError as exc:
        _fail(f"cannot write to {output}: {exc.strerror or exc}")
    _out.print(str(report.result), highlight=False, markup=False)
    if report.metareg is not None:
        _out.print(report.metareg.summary(), highlight=False, markup=False)
    for note in report.notes:
        _err.print(f"note: {note}", highlight=False, markup=False)
    _out.print(f"wrote {len(written)} files to {output}", highlight=False)


@app.command()
def datasets(
    name: str = typer.Argument(None, help="Data set to describe (omit to list them)."),
    reproduce: bool = typer.Option(False, "--reproduce", help="Re-run the published analysis and print published "
                                   "against reproduced estimates."),
    by_target: bool = typer.Option(False, "--by-target", help="Pool per stimulation target code (trials whose "
                                   "site the sources give) and print one row per target."),
    output: Path = typer.Option(None, "--output", "-o", help="With --by-target: write the table to this CSV "
                                "(for `connectome map --effects`)."),
) -> None:
    """List the real meta-analysis data sets shipped with neuromodmap, with their source and citation."""
    from neuromodmap.evidence import datasets as ds

    if name is None:
        for key, d in ds.DATASETS.items():
            _out.print(f"{key}\t{d.title}\n\t{ds.dataset_path(key)}", highlight=False, markup=False, soft_wrap=True)
        return
    if name not in ds.DATASETS:
        _fail(f"unknown data set {name!r}; choose one of {', '.join(ds.DATASETS)}")
    d = ds.DATASETS[name]
    prov = ds.provenance(name)
    _out.print(f"{d.title}\nfile: {ds.dataset_path(name)}\nsource: {prov.source}\ncitation: {prov.citation}\n"
               f"run: neuromodmap evidence meta {ds.dataset_path(name)} --measure {d.measure} --by {d.by} -o OUT",
               highlight=False, markup=False, soft_wrap=True)
    if reproduce:
        table = ds.reproduce(name)
        for row in table.itertuples():
            pub = ("" if row.published_rr != row.published_rr else
                   f"   published {row.published_rr:.2f} ({row.published_ci_lb:.2f} to {row.published_ci_ub:.2f})")
            _out.print(f"{row.analysis:<16} k={row.k:<3} RR {row.rr:.2f} ({row.ci_lb:.2f} to {row.ci_ub:.2f}){pub}",
                       highlight=False, markup=False)
    if by_target:
        from neuromodmap._utils import write_csv
        from neuromodmap.connectome import ConnectomeError
        from neuromodmap.evidence import MetaAnalysisError

        try:
            table = ds.pooled_by_target(name)
        except (MetaAnalysisError, ConnectomeError, OSError) as exc:  # OSError covers missing atlas data
            _fail(f"cannot pool {name} by target: {exc}")
        for row in table.itertuples():
            what = (f"RR {row.estimate_bt:.2f} ({row.ci_lb_bt:.2f} to {row.ci_ub_bt:.2f}), {row.model}"
                    if row.estimate_bt == row.estimate_bt else row.model)
            _out.print(f"{row.target or '(site not given)':<14} k={row.k:<3} {what}   {row.studies}",
                       highlight=False, markup=False, soft_wrap=True)
        if output:
            write_csv(table, output)
            _out.print(f"wrote {output}", highlight=False)
