"""Derive the deep-target coordinates of the catalogue from published atlases (private).

Run ``python -m neuromodmap.connectome._atlas_targets [--data-dir DIR]`` to recompute
``data/targets_atlas.csv``. The atlases are fetched on demand from pinned URLs and checked against
their sha256 (:data:`neuromodmap.connectome._data.ATLAS_FILES`); a folder laid out like
``shared/data`` (``atlases/allen_hra/...``, ``atlases/cit168/...``) is used instead when given.
The committed CSV is this script's output, so the catalogue and the tests need no network.

Each target is the centroid of an atlas structure in one hemisphere (voxels with x < 0 or x > 0),
moved to the structure's nearest voxel so it lies inside it. Atlases: the Allen Human Reference
Atlas (Ding et al. 2016), whose 141 structures include the habenular nuclei, VPL, VPM, CM, Pf and
the BNST, in the ICBM 2009b nonlinear symmetric template; and the hypothalamic-region atlas of
Neudorfer et al. (2020), whose 25 structures include the inferior thalamic peduncle, in the ICBM
2009b nonlinear asymmetric template. No template conversion is applied; the script prints checks of
that choice: the same structures in an independent atlas (CIT168, MNI152 2009c asymmetric, 168
living subjects), the offset between Allen's thalamus and the Tian S1 thalamus (MNI152NLin6Asym)
the connectomes are mapped with, and six Neudorfer structures against the Allen atlas (which also
shows that the pinned copy of the Neudorfer atlas is the atlas it claims to be).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import re
from importlib.resources import files
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd

from neuromodmap.connectome import _data

__all__ = ["SPECS", "NEUDORFER_SPECS", "derive", "OUTPUT_COLUMNS"]

_BNST_NOTE = ("BNST DBS target; 5 mm sphere because the parcel atlases (Tian S1) have no BNST: at 3 mm one side "
              "reaches no parcel, at 5 mm both sides cover the adjacent caudate and thalamus parcels")

# (id, name, target code, indication, modality, hemisphere, radius mm, Allen structures, note)
SPECS = [
    ("habenula_left", "Left habenula (lateral-habenula DBS target)", "habenula", "depression", "dbs", "left", 3,
     ("HN",), "Allen HN = habenular nuclei (medial and lateral together; the lateral nucleus is not delineated)"),
    ("habenula_right", "Right habenula (lateral-habenula DBS target)", "habenula", "depression", "dbs", "right", 3,
     ("HN",), "Allen HN = habenular nuclei (medial and lateral together; the lateral nucleus is not delineated)"),
    ("thalamus_vpl_left", "Left ventral posterolateral thalamus (VPL)", "thalamus_sensory", "pain", "dbs", "left", 3,
     ("VPL",), "sensory-thalamus DBS target (body)"),
    ("thalamus_vpl_right", "Right ventral posterolateral thalamus (VPL)", "thalamus_sensory", "pain", "dbs", "right",
     3, ("VPL",), "sensory-thalamus DBS target (body)"),
    ("thalamus_vpm_left", "Left ventral posteromedial thalamus (VPM)", "thalamus_sensory", "pain", "dbs", "left", 3,
     ("VPM",), "sensory-thalamus DBS target (face)"),
    ("thalamus_vpm_right", "Right ventral posteromedial thalamus (VPM)", "thalamus_sensory", "pain", "dbs", "right",
     3, ("VPM",), "sensory-thalamus DBS target (face)"),
    ("thalamus_cmpf_left", "Left centromedian-parafascicular complex (CM-Pf)", "thalamus_cm", "pain", "dbs", "left", 3,
     ("CM", "Pf"), "centroid of the union of Allen CM and Pf"),
    ("thalamus_cmpf_right", "Right centromedian-parafascicular complex (CM-Pf)", "thalamus_cm", "pain", "dbs",
     "right", 3, ("CM", "Pf"), "centroid of the union of Allen CM and Pf"),
    ("bnst_left", "Left bed nucleus of the stria terminalis (BNST)", "bnst", "depression", "dbs", "left", 5,
     ("BNST",), _BNST_NOTE),
    ("bnst_right", "Right bed nucleus of the stria terminalis (BNST)", "bnst", "depression", "dbs", "right", 5,
     ("BNST",), _BNST_NOTE),
]

_ITP_NOTE = ("inferior thalamic peduncle, DBS target for depression and OCD; centroid of the peduncle segment "
             "the atlas delineates (posterior to the anterior commissure, lateral to the fornix column, beneath "
             "the anterior thalamus), not a surgical coordinate")

# (id, name, target code, indication, modality, hemisphere, radius mm, Neudorfer abbreviation, note)
NEUDORFER_SPECS = [
    ("itp_left", "Left inferior thalamic peduncle (ITP)", "itp", "depression", "dbs", "left", 3, "ITP", _ITP_NOTE),
    ("itp_right", "Right inferior thalamic peduncle (ITP)", "itp", "depression", "dbs", "right", 3, "ITP", _ITP_NOTE),
]

#: Neudorfer structure -> the same structure in the Allen atlas, for the printed cross-check
_NEUDORFER_CHECK = {"STN": "STH", "RN": "RN", "SN": "SN", "BNST": "BNST", "AC": "ac", "MT": "mtt"}
#: the grid of the ICBM 2009b nonlinear asymmetric template at 0.5 mm
_ICBM2009B_05MM = ((394, 466, 378), (-98.0, -134.0, -72.0))

#: the same structures in CIT168 (independent in vivo atlas), for the printed cross-check
_CIT168_CHECK = {"HN": "Habenular Nucleus", "BNST": "Extended Amygdala", "NAC": "Nucleus Accumbens"}

OUTPUT_COLUMNS = ["id", "name", "target", "indication", "modality", "depth", "hemisphere", "x", "y", "z", "radius",
                  "evidence", "citation", "note", "atlas", "atlas_space", "structures", "n_voxels", "atlas_url",
                  "atlas_sha256", "derived"]

_OUTPUT = Path(str(files("neuromodmap.connectome") / "data" / "targets_atlas.csv"))


def _allen_labels(path: Path) -> dict[str, int]:
    """Structure acronym -> label value, from ITK-SNAP's description file ('27 R G B ... "THM - 10390"')."""
    labels = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        m = re.match(r'\s*(\d+)\s.*"([^"]+?)\s+-\s+\d+"', line)
        if m:
            labels[m.group(2).strip()] = int(m.group(1))
    return labels


def _neudorfer_labels(path: Path) -> dict[tuple[str, str], int]:
    """(structure abbreviation, hemisphere) -> label value, from the atlas's Volumes_names-labels.csv.

    The abbreviation carries the side ("R_ITP"); it must agree with the Hemisphere column.
    """
    table = pd.read_csv(path, dtype=str).apply(lambda col: col.str.strip())
    labels = {}
    for row in table.itertuples(index=False):
        prefix, _, name = row.Abbreviation.partition("_")
        side = {"R": "right", "L": "left"}.get(prefix)
        if side is None or side != row.Hemisphere.lower() or not name:
            raise ValueError(f"{path}: label {row.Label}: abbreviation {row.Abbreviation!r} does not match "
                             f"hemisphere {row.Hemisphere!r}")
        labels[(name, side)] = int(row.Label)
    return labels


def _hemisphere_voxels(image: nib.Nifti1Image, values: list[int]) -> dict[str, np.ndarray]:
    data = np.asarray(image.dataobj)
    xyz = nib.affines.apply_affine(image.affine, np.argwhere(np.isin(data, values)))
    return {"left": xyz[xyz[:, 0] < 0], "right": xyz[xyz[:, 0] > 0]}


def _inside_centroid(xyz: np.ndarray, weights: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(centroid, nearest voxel of the structure to it)."""
    centre = np.average(xyz, axis=0, weights=weights)
    return centre, xyz[np.argmin(((xyz - centre) ** 2).sum(axis=1))]


def _cit168_centroids(data_dir) -> dict[tuple[str, str], np.ndarray]:
    """Probability-weighted centroids of CIT168 structures (voxels where a structure is the most likely)."""
    image = nib.load(_data.atlas_file("cit168/CIT168.nii.gz", data_dir))
    labels = json.loads(_data.atlas_file("cit168/CIT168.json", data_dir).read_text(encoding="utf-8"))["labels"]
    rgba = np.asarray(image.dataobj)
    top, prob = rgba["R"].astype(int), rgba["B"].astype(float) / 255.0
    out = {}
    for allen, name in _CIT168_CHECK.items():
        for side, prefix in (("left", "L "), ("right", "R ")):
            mask = top == labels.index(prefix + name)
            xyz = nib.affines.apply_affine(image.affine, np.argwhere(mask))
            out[(allen, side)] = np.average(xyz, axis=0, weights=prob[mask])
    return out


def _row(spec_id, name, target, indication, modality, hemi, radius, note, inside, n_voxels, structures, *,
         citation, atlas, space, remote, today) -> dict:
    """One output row: the structure's inside centroid with the atlas it came from."""
    return {
        "id": spec_id, "name": name, "target": target, "indication": indication, "modality": modality,
        "depth": "deep", "hemisphere": hemi, "x": round(float(inside[0]), 2), "y": round(float(inside[1]), 2),
        "z": round(float(inside[2]), 2), "radius": float(radius), "evidence": "atlas",
        "citation": f"{citation}; structure(s) {structures}, {hemi} hemisphere, centroid moved to its nearest "
                    "voxel of the structure",
        "note": f"atlas-derived: {note}; {space.split(' (')[0]} coordinates used as MNI without conversion",
        "atlas": atlas, "atlas_space": space, "structures": structures, "n_voxels": n_voxels,
        "atlas_url": remote.url, "atlas_sha256": remote.sha256,
        "derived": f"{today} by neuromodmap.connectome._atlas_targets",
    }


def _neudorfer(data_dir, allen_image, allen_labels, today) -> tuple[list[dict], list[str]]:
    """ITP rows from the Neudorfer atlas, and the checks that the pinned copy is that atlas."""
    image = nib.load(_data.atlas_file("neudorfer2020/atlas_labels_0.5mm.nii.gz", data_dir))
    labels = _neudorfer_labels(_data.atlas_file("neudorfer2020/Volumes_names-labels.csv", data_dir))
    data = np.asarray(image.dataobj)
    shape, origin = _ICBM2009B_05MM
    if data.shape != shape or not np.allclose(image.affine[:3, 3], origin) or \
            not np.allclose(np.diag(image.affine)[:3], 0.5):
        raise ValueError(f"Neudorfer atlas: grid {data.shape}, origin {image.affine[:3, 3].tolist()} is not the "
                         "ICBM 2009b 0.5 mm grid")
    remote = _data.ATLAS_FILES["neudorfer2020/atlas_labels_0.5mm.nii.gz"]
    rows, report = [], []

    def voxels(label: int, side: str) -> np.ndarray:
        xyz = nib.affines.apply_affine(image.affine, np.argwhere(data == label))
        on_side = (xyz[:, 0] > 0) if side == "right" else (xyz[:, 0] < 0)
        if on_side.mean() < 0.9:  # a copy with swapped sides would put the right ITP on the left
            raise ValueError(f"Neudorfer atlas: label {label} ({side}) has {on_side.mean():.0%} of its voxels "
                             f"on the {side}")
        return xyz[on_side]

    for (id_, name, target, indication, modality, hemi, radius, structure, note) in NEUDORFER_SPECS:
        xyz = voxels(labels[(structure, hemi)], hemi)
        centre, inside = _inside_centroid(xyz)
        rows.append(_row(id_, name, target, indication, modality, hemi, radius, note, inside, len(xyz), structure,
                         citation=_data.NEUDORFER_CITATION,
                         atlas="Hypothalamic region atlas (Neudorfer et al. 2020)",
                         space="ICBM 2009b nonlinear asymmetric (MNI152NLin2009bAsym), 0.5 mm",
                         remote=remote, today=today))
        report.append(f"{id_}: centroid {np.round(centre, 2).tolist()} -> voxel {np.round(inside, 2).tolist()} "
                      f"({len(xyz)} voxels of {structure}, label {labels[(structure, hemi)]})")
    report.append(f"check: Neudorfer atlas grid {list(shape)} at 0.5 mm, origin {list(origin)}: the ICBM 2009b grid")
    for structure, allen in _NEUDORFER_CHECK.items():
        for side in ("left", "right"):
            own = voxels(labels[(structure, side)], side).mean(axis=0)
            ref = _hemisphere_voxels(allen_image, [allen_labels[allen]])[side].mean(axis=0)
            report.append(f"check: Neudorfer {structure} {side} centroid {np.round(own, 2).tolist()} vs Allen {allen} "
                          f"{np.round(ref, 2).tolist()}: {np.linalg.norm(own - ref):.2f} mm")
    return rows, report


def derive(data_dir=None) -> tuple[pd.DataFrame, list[str]]:
    """The atlas-derived targets (:data:`OUTPUT_COLUMNS`) and the lines of the cross-check report."""
    volume = _data.atlas_file("allen_hra/AllenAtlas.nii.gz", data_dir)
    labels = _allen_labels(_data.atlas_file("allen_hra/itksnap_label_description_Br.txt", data_dir))
    image = nib.load(volume)
    remote = _data.ATLAS_FILES["allen_hra/AllenAtlas.nii.gz"]
    today = dt.date.today().isoformat()
    rows, report = [], []
    for (id_, name, target, indication, modality, hemi, radius, structures, note) in SPECS:
        xyz = _hemisphere_voxels(image, [labels[s] for s in structures])[hemi]
        centre, inside = _inside_centroid(xyz)
        rows.append(_row(id_, name, target, indication, modality, hemi, radius, note, inside, len(xyz),
                         "+".join(structures), citation=_data.ALLEN_CITATION,
                         atlas="Allen Human Reference Atlas 3D 2020 (Ding et al. 2016)",
                         space="ICBM 2009b nonlinear symmetric (MNI152NLin2009bSym), 0.5 mm",
                         remote=remote, today=today))
        report.append(f"{id_}: centroid {np.round(centre, 2).tolist()} -> voxel {np.round(inside, 2).tolist()} "
                      f"({len(xyz)} voxels of {'+'.join(structures)})")
    itp_rows, itp_report = _neudorfer(data_dir, image, labels, today)
    rows += itp_rows
    report += itp_report
    # checks of the atlas and of the template choice
    cit = _cit168_centroids(data_dir)
    for (structure, side), c in cit.items():
        own = _inside_centroid(_hemisphere_voxels(image, [labels[structure]])[side])[0]
        report.append(f"check: Allen {structure} {side} centroid {np.round(own, 2).tolist()} vs CIT168 "
                      f"'{_CIT168_CHECK[structure]}' {np.round(c, 2).tolist()}: {np.linalg.norm(own - c):.2f} mm")
    thalamic = [labels[s] for s in ("THM", "ANC", "LD", "MD", "Re", "LP", "Pul", "VA", "VL", "VPL", "VPM", "DLG",
                                    "MG", "CM", "Pf", "MiN")]
    tian = nib.load(_data.resolve(
        "tian_schaefer/Schaefer2018_100Parcels_7Networks_order_Tian_Subcortex_S1_MNI152NLin6Asym_2mm.nii.gz",
        data_dir))
    names = _data.resolve("tian_schaefer/Tian_Subcortex_S1_3T_label.txt", data_dir).read_text().split()
    for side, hemi in (("left", "lh"), ("right", "rh")):
        own = _hemisphere_voxels(image, thalamic)[side].mean(axis=0)
        ref = _hemisphere_voxels(tian, [names.index(f"aTHA-{hemi}") + 1, names.index(f"pTHA-{hemi}") + 1])[side]
        ref = ref.mean(axis=0)
        report.append(f"check: Allen thalamus {side} centroid {np.round(own, 2).tolist()} vs Tian S1 thalamus "
                      f"(MNI152NLin6Asym) {np.round(ref, 2).tolist()}: offset {np.round(own - ref, 2).tolist()} "
                      f"({np.linalg.norm(own - ref):.2f} mm)")
    return pd.DataFrame(rows, columns=OUTPUT_COLUMNS), report


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", help="folder laid out like shared/data (atlases/, connectomes/)")
    parser.add_argument("--output", default=str(_OUTPUT), help="CSV to write (default: the packaged one)")
    args = parser.parse_args(argv)
    table, report = derive(args.data_dir)
    table.to_csv(args.output, index=False)
    Path(args.output).with_name(Path(args.output).stem + "_checks.txt").write_text("\n".join(report) + "\n",
                                                                                 encoding="utf-8")
    print("\n".join(report))
    print(f"{len(table)} targets written to {args.output}")


if __name__ == "__main__":
    main()
