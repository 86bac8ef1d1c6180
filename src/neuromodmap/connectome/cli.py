"""``neuromodmap connectome ...``: target catalogue, connectomic mapping, TMS site targeting."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

app = typer.Typer(help="Map stimulation targets onto normative connectomes; Fox-style TMS targeting.",
                  no_args_is_help=True)
console = Console(stderr=True)
out_console = Console()

_DATA = typer.Option(None, "--data-dir", help="Local data folder laid out like shared/data (else NEUROMODMAP_DATA, "
                                              "the cache, or a pinned download).")
_CONNECTOME = typer.Option("enigma-schaefer400", "--connectome", "-c",
                           help="Connectome name; see `neuromodmap connectome list`.")


def _fail(message: str) -> None:
    """A user error: one line, exit 2 (printed by the root command's handler, :mod:`neuromodmap.errors`)."""
    from neuromodmap.errors import UserError

    raise UserError(message)


def _message(exc: BaseException) -> str:
    """The one line for an expected error (an OSError names its file as the CLI-wide rule does)."""
    from neuromodmap.errors import user_line

    return user_line(exc) or str(exc)


def _expected_errors():
    from neuromodmap.config import DataNotFoundError
    from neuromodmap.connectome import ConnectomeError

    return (ConnectomeError, DataNotFoundError, OSError)


def _xyz(text: str, option: str) -> tuple[float, float, float]:
    parts = [p.strip() for p in text.split(",")]
    try:
        values = tuple(float(p) for p in parts)
    except ValueError:
        values = ()
    if len(values) != 3:
        _fail(f"{option} must be three numbers x,y,z in MNI mm (e.g. 6,16,-10), not {text!r}")
    return values  # type: ignore[return-value]


@app.command("list")
def list_cmd() -> None:
    """List the parcel-level connectomes."""
    from neuromodmap.connectome import CONNECTOMES

    table = Table("name", "description")
    for name, description in CONNECTOMES.items():
        table.add_row(name, description)
    out_console.print(table)


@app.command("targets")
def targets_cmd(
    output: Path = typer.Option(None, "--output", "-o", help="Write the catalogue to this CSV."),
    indication: str = typer.Option(None, "--indication", help="Only pain or depression targets (with 'both')."),
    data_dir: Path = _DATA,
) -> None:
    """Show (or export) the built-in target catalogue with each coordinate's source and citation."""
    from neuromodmap._utils import write_csv
    from neuromodmap.connectome import OMITTED_TARGETS, target_catalogue

    try:
        cat = target_catalogue(data_dir)
    except _expected_errors() as exc:
        _fail(_message(exc))
    if indication:
        if indication not in ("pain", "depression"):
            _fail(f"--indication must be pain or depression, not {indication!r}")
        cat = cat[cat.indication.isin([indication, "both"])]
    if output:
        write_csv(cat, output)
        console.print(f"{len(cat)} targets written to {output}")
        return
    table = Table("id", "target", "indication", "modality", "depth", "x, y, z", "r", "source", "citation")
    for r in cat.itertuples():
        source = r.coordinate_source + (" [S]" if r.evidence == "S" else "")
        table.add_row(r.id, r.target, r.indication, r.modality, r.depth, f"{r.x:g}, {r.y:g}, {r.z:g}",
                      f"{r.radius:g}", source, _short_citation(r.citation))
    out_console.print(table)
    console.print("Full citations: --output FILE.csv. Left out (no honest coordinate): "
                  + "; ".join(OMITTED_TARGETS.values()), highlight=False)


def _short_citation(text: str) -> str:
    """'First author et al. (year)' plus the doi when the citation has one."""
    import re

    head = re.match(r"\s*([^;()]+?\(\d{4}\))", text)
    doi = re.search(r"doi:\s*(\S+?)[;,)]?(?:\s|$)", text)
    short = head.group(1) if head else text.split(";")[0][:60]
    return short + (f" doi:{doi.group(1)}" if doi else "")


@app.command("map")
def map_cmd(
    targets: str = typer.Option("builtin", "--targets", "-t",
                                help="'builtin' or a CSV with id,x,y,z[,radius,indication,modality,depth]."),
    connectome: str = _CONNECTOME,
    radius: float = typer.Option(None, "--radius", "-r", help="Sphere radius in mm for every target "
                                                              "(default: each target's own, else 5)."),
    indication: str = typer.Option("pain", "--indication",
                                   help="pain (default), depression or all. Superficial and deep targets are "
                                        "compared within one indication, never mixed; 'both' targets count for "
                                        "each. A CSV without an indication column is mapped whole."),
    null: list[str] = typer.Option(None, "--null",
                                   help="Null model(s): random-sites, variogram, depth-relabel (repeat or "
                                        "comma-separate; 'all', 'none'). Default: all three."),
    n_null: int = typer.Option(1000, "--n-null", help="Draws of the random-sites and variogram nulls."),
    seed: int = typer.Option(0, "--seed", "--random-seed", help="Random seed of the nulls (reproducible draws)."),
    top_percent: float = typer.Option(10.0, "--top-percent", help="Top X % of regions for hubs, Dice, conjunction."),
    permutations: int = typer.Option(5000, "--permutations", help="Relabellings for the depth-relabel null."),
    figures: bool = typer.Option(True, "--figures/--no-figures", help="Draw glass brains, stat maps and charts."),
    effects: Path = typer.Option(None, "--effects", help="Pooled effects per target code (by_target.csv or "
                                                         "pooled.csv of `evidence meta --by target`): listed "
                                                         "beside each target, drawn on a glass brain."),
    output: Path = typer.Option(..., "--output", "-o", help="Output folder."),
    data_dir: Path = _DATA,
) -> None:
    """Connectivity profiles, group maps, superficial-vs-deep overlap against null models, hubs, similarity, HTML."""
    from neuromodmap.connectome import attach_target_effects, load_targets, map_targets
    from neuromodmap.connectome._mapping import INDICATION_CHOICES
    from neuromodmap.connectome._nulls import DEFAULT_NULLS, parse_nulls

    if radius is not None and not 0 <= radius <= 50:
        _fail(f"--radius must be between 0 and 50 mm, not {radius:g}")
    if indication not in INDICATION_CHOICES:
        _fail(f"--indication must be one of {', '.join(INDICATION_CHOICES)}, not {indication!r}")
    if not 1 <= n_null <= 1_000_000:
        _fail(f"--n-null must be between 1 and 1,000,000, not {n_null}")
    try:
        nulls = parse_nulls(null) if null else DEFAULT_NULLS
    except _expected_errors() as exc:
        _fail(f"--null: {exc}")
    try:
        table = load_targets(targets, data_dir, default_radius=radius)
        if effects is not None:
            table = attach_target_effects(table, effects)
            for code in table.attrs.get("unmatched", []):
                console.print(f"[yellow]note[/] pooled effect for {code}: no target with that code", highlight=False)
        result = map_targets(table, connectome, radius=radius, top_percent=top_percent, null=nulls, n_null=n_null,
                             n_permutations=permutations, indication=indication, random_state=seed,
                             data_dir=data_dir, progress=True)
        files = result.save(output, figures=figures)
    except _expected_errors() as exc:
        _fail(_message(exc))
    for row in result.skipped.itertuples():
        console.print(f"[yellow]skipped[/] {row.id}: {row.reason}", highlight=False)
    for row in result.targets[result.targets.method != "sphere"].itertuples():
        console.print(f"[yellow]note[/] {row.id}: {row.method} {row.regions} at {row.distance_mm} mm",
                      highlight=False)
    console.print(result.summary(), highlight=False)
    console.print(f"{len(files)} files written to {output} (open {output / 'connectome.html'})", highlight=False)


@app.command("site-to-seed")
def site_to_seed_cmd(
    sites: Path = typer.Argument(None, help="CSV with id,x,y,z (MNI mm) of candidate stimulation sites."),
    seed: str = typer.Option("6,16,-10", "--seed", help="Seed centre x,y,z (default: Fox 2012 sgACC)."),
    radius: float = typer.Option(10.0, "--radius", "-r", help="Sphere radius (mm) of sites and seed."),
    seed_radius: float = typer.Option(None, "--seed-radius", help="Seed radius if different from --radius."),
    connectome: str = _CONNECTOME,
    search: str = typer.Option(None, "--search", help="Rank candidate cortical parcels by anticorrelation: "
                                                      "x,y,z[,r], a target code (dlpfc_left) or a label pattern."),
    output: Path = typer.Option(None, "--output", "-o", help="Output CSV (sites plus a connectivity column)."),
    data_dir: Path = _DATA,
) -> None:
    """Connectivity of each site to a seed (Fox-style sgACC targeting); --search ranks candidates."""
    from neuromodmap._utils import write_csv
    from neuromodmap.connectome import read_targets
    from neuromodmap.connectome._targeting import search_anticorrelated, site_to_seed

    if sites is None and not search:
        _fail("give a SITES.csv, --search REGION, or both")
    if not 0 <= radius <= 50 or (seed_radius is not None and not 0 <= seed_radius <= 50):
        _fail("radii must be between 0 and 50 mm")
    centre = _xyz(seed, "--seed")
    try:
        if sites is not None:
            table = read_targets(sites, complete=False)
            result = site_to_seed(table, centre, radius=radius, seed_radius=seed_radius, connectome=connectome,
                                  data_dir=data_dir)
            units = result.attrs["units"]
            if output:
                write_csv(result, output)
                console.print(f"{len(result)} sites written to {output}; connectivity in {units}", highlight=False)
            typer.echo(result[["id", "x", "y", "z", "connectivity", "regions"]].to_string(index=False))
            for row in result[result.method == "not_mapped"].itertuples():
                console.print(f"[yellow]not mapped[/] {row.id}: {row.note}", highlight=False)
        if search:
            ranked = search_anticorrelated(search, centre, seed_radius=seed_radius or radius, connectome=connectome,
                                           data_dir=data_dir)
            target = output.with_name(output.stem + ".search.csv") if (output and sites is not None) else output
            if target:
                write_csv(ranked, target)
                console.print(f"{len(ranked)} candidate parcels ranked in {target}")
            typer.echo(ranked.head(15).to_string(index=False))
            console.print(f"connectivity in {ranked.attrs['units']}; most anticorrelated first", highlight=False)
    except _expected_errors() as exc:
        _fail(_message(exc))


@app.command("voxel-map")
def voxel_map_cmd(
    leaddbs: Path = typer.Option(None, "--leaddbs", help="Lead-DBS fMRI connectome folder (dataset_volsurf.mat, vol/)."),
    runs: list[Path] = typer.Option(None, "--run", help="A 4-D NIfTI resting-state run in MNI space (repeatable)."),
    mask: Path = typer.Option(None, "--mask", help="Brain mask on the runs' grid (with --run)."),
    targets: str = typer.Option("builtin", "--targets", "-t", help="'builtin' or a CSV with id,x,y,z[,radius]."),
    radius: float = typer.Option(None, "--radius", "-r", help="Seed radius in mm (default: each target's own)."),
    scheduler: str = typer.Option(None, "--scheduler", help="'threads' (default: voxel blocks on local "
                                 "threads), 'synchronous', 'dask' (subjects on an in-process Dask cluster of "
                                 "threads), or a dask.distributed address such as tcp://host:8786."),
    workers: int = typer.Option(None, "--workers", help="Local threads."),
    output: Path = typer.Option(..., "--output", "-o", help="Output folder for AvgR/AvgRFz/VarR/T maps."),
    data_dir: Path = _DATA,
) -> None:
    """Voxel-level seed maps over every subject of a big connectome (Lead-DBS outputs)."""
    from neuromodmap.connectome import (
        LeadDBSConnectome,
        NiftiConnectome,
        load_targets,
        voxel_seed_maps,
    )

    if (leaddbs is None) == (not runs):
        _fail("give either --leaddbs DIR or one or more --run files with --mask")
    if runs and mask is None:
        _fail("--run needs --mask")
    try:
        source = LeadDBSConnectome(leaddbs) if leaddbs else NiftiConnectome(runs, mask)
        table = load_targets(targets, data_dir, default_radius=radius)
        if radius is not None:
            table["radius"] = radius
        maps = voxel_seed_maps(source, table, radius=radius if radius is not None else 5.0, scheduler=scheduler,
                               n_workers=workers)
        files = maps.save(output)
    except _expected_errors() as exc:
        _fail(_message(exc))
    console.print(f"{len(maps.seeds)} seeds x {source.n_voxels} voxels x {len(maps.subjects)} subjects; "
                  f"{len(files)} files written to {output}", highlight=False)
