"""Parcel-level connectomes: label mapping, seed spheres, bad input (real ENIGMA/Hansen/Tian data)."""

from __future__ import annotations

import shutil
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from neuromodmap.connectome import (
    AtlasMismatchError,
    ConnectomeError,
    CoordinateError,
    ParcelConnectome,
    load_connectome,
)


def _labels(path: Path) -> list[str]:
    return [t for t in path.read_text().replace("\n", ",").split(",") if t]


def test_default_matrix_keeps_anticorrelations(schaefer400, data_root):
    m = schaefer400.matrix
    assert m.shape == (414, 414) and schaefer400.n_regions == 414
    assert np.allclose(m, m.T)
    assert (m < 0).any()  # the reason this file, not the 82-region one, is the default
    dk = load_connectome("enigma-dk82", data_root)
    assert dk.matrix.shape == (82, 82) and dk.matrix.min() == 0.0
    assert "negative values were set to zero" in dk.methods()


def test_schaefer_volume_label_minus_16_indexes_enigma_labels(data_root):
    """Tian's own label table for the 100-parcel volume names label 17+k like ENIGMA's k-th label."""
    folder = data_root / "connectomes"
    lines = (folder / "tian_schaefer" / "Schaefer2018_100Parcels_7Networks_order_Tian_Subcortex_S1_label.txt")
    names = lines.read_text().split("\n")[0::2]
    enigma = _labels(folder / "enigma_hcp" / "funcLabels_with_sctx_schaefer_100.csv")
    assert names[16:116] == enigma[:100]
    c = load_connectome("enigma-schaefer100", data_root)
    assert c.labels == enigma


def test_hansen_cortex_rows_follow_schaefer_order(hansen, data_root):
    enigma = _labels(data_root / "connectomes" / "enigma_hcp" / "funcLabels_with_sctx_schaefer_400.csv")
    cortex = hansen.regions[hansen.regions.structure == "cortex"].label.tolist()
    assert cortex == enigma[:400]
    assert hansen.matrix.shape == (483, 483)


def test_sphere_counts_match_brute_force(schaefer400, data_root):
    img = nib.load(data_root / "connectomes" / "tian_schaefer" /
                   "Schaefer2018_400Parcels_7Networks_order_Tian_Subcortex_S1_MNI152NLin6Asym_2mm.nii.gz")
    data = np.asarray(img.dataobj).astype(int)
    ijk = np.argwhere(data >= 0)
    xyz = nib.affines.apply_affine(img.affine, ijk)
    for coord, radius in [((6, 16, -10), 10), ((-37, 26, 49), 10), ((-14, -26, 2), 5)]:
        inside = np.linalg.norm(xyz - np.array(coord), axis=1) <= radius
        labels = data[tuple(ijk[inside].T)]
        labels = labels[labels > 0]
        seed = schaefer400.seed(coord, radius)
        assert seed.method == "sphere"
        assert seed.n_voxels == len(labels)
        assert seed.weights.sum() == pytest.approx(1.0)
        # the thalamus sphere is pure posterior thalamus (Tian 11 = pTHA-lh -> ENIGMA Lthal)
    assert schaefer400.labels[int(np.argmax(seed.weights))] == "Lthal" and seed.weights.max() == 1.0


def test_sgacc_seed_covers_subgenual_parcels(schaefer400):
    seed = schaefer400.seed((6, 16, -10), 10)
    top = {schaefer400.labels[i] for i in np.argsort(-seed.weights)[:4]}
    assert any("Limbic_OFC" in t or "Default_PFC" in t for t in top)


def test_paint_round_trip(schaefer400):
    values = np.arange(schaefer400.n_regions, dtype=float) + 1
    img = schaefer400.atlas.paint(values)
    assert img.shape == (91, 109, 91)
    seed = schaefer400.seed((-14, -26, 2), 2)  # inside Lthal
    ijk = np.rint(nib.affines.apply_affine(np.linalg.inv(img.affine), (-14, -26, 2))).astype(int)
    assert np.asarray(img.dataobj)[tuple(ijk)] == values[int(np.argmax(seed.weights))]
    four_d = schaefer400.atlas.paint(np.vstack([values, -values]))
    assert four_d.shape == (91, 109, 91, 2)
    with pytest.raises(AtlasMismatchError, match="cannot paint 3 values"):
        schaefer400.atlas.paint([1, 2, 3])


def test_outside_brain_nearest_parcel_then_error(schaefer400, data_root):
    # 4 mm lateral to the left insula's outer cortex: nearest parcel with its distance
    far = schaefer400.seed((-72, -20, 10), 2)
    assert far.method == "nearest_parcel" and 0 < far.distance_mm <= 5
    assert "nearest parcel" in far.note
    with pytest.raises(CoordinateError, match=r"26\.0 mm from the nearest parcel"):
        schaefer400.seed((-90, 0, 0), 10)
    # the raphe magnus (Bär 2016) maps to a bridged nucleus on the default; Schaefer-200 has none
    assert schaefer400.seed((0, -34, -40), 3).label == "RMg"
    with pytest.raises(CoordinateError, match="enigma-schaefer400, enigma-schaefer100 or hansen-brainstem"):
        load_connectome("enigma-schaefer200", data_root).seed((0, -34, -40), 3)
    with pytest.raises(CoordinateError, match="not finite"):
        schaefer400.seed((np.nan, 0, 0), 5)


def test_brainstem_nucleus_by_nearest_centroid(hansen):
    pag = hansen.seed((0.57, -32.57, -8.94), 3)
    assert pag.method == "nearest_nucleus" and hansen.labels[pag.regions[0]] == "PAG_2020"
    assert pag.distance_mm < 0.01
    # Bär 2016 dorsal raphe coordinate: nearest Brainstem Navigator centroid is MnR at 5.4 mm
    dr = hansen.seed((2, -26, -18), 3)
    assert hansen.labels[dr.regions[0]] == "MnR" and dr.distance_mm == pytest.approx(5.39, abs=0.01)
    cortex = hansen.seed((-37, 26, 49), 10)
    assert cortex.method == "sphere"


def test_unknown_name_and_mismatched_matrix(data_root, tmp_path, schaefer400):
    with pytest.raises(ConnectomeError, match="unknown connectome 'enigma-schaefer500'"):
        load_connectome("enigma-schaefer500", data_root)
    with pytest.raises(AtlasMismatchError, match="does not match"):
        ParcelConnectome("bad", schaefer400.matrix[:10, :10], schaefer400.regions, "functional", "r",
                         schaefer400.atlas, schaefer400.provenance)
    bad = schaefer400.matrix.copy()
    bad[0, 1] = np.nan
    with pytest.raises(AtlasMismatchError, match="NaN"):
        ParcelConnectome("bad", bad, schaefer400.regions, "functional", "r", schaefer400.atlas,
                         schaefer400.provenance)
    # a truncated matrix file in a local data folder: clear error naming the mismatch
    src = data_root / "connectomes"
    dst = tmp_path / "connectomes"
    shutil.copytree(src / "tian_schaefer", dst / "tian_schaefer")
    (dst / "enigma_hcp").mkdir()
    shutil.copy(src / "enigma_hcp" / "funcLabels_with_sctx_schaefer_100.csv", dst / "enigma_hcp")
    rows = (src / "enigma_hcp" / "funcMatrix_with_ctx_schaefer_100.csv").read_text().splitlines()
    (dst / "enigma_hcp" / "funcMatrix_with_ctx_schaefer_100.csv").write_text("\n".join(rows[:50]) + "\n")
    with pytest.raises(AtlasMismatchError, match=r"matrix shape \(50, 114\) does not match 114"):
        load_connectome("enigma-schaefer100", tmp_path, download=False)
    # a Schaefer-100 volume offered for the 200-parcel connectome
    shutil.copy(src / "enigma_hcp" / "funcLabels_with_sctx_schaefer_200.csv", dst / "enigma_hcp")
    shutil.copy(src / "enigma_hcp" / "funcMatrix_with_ctx_schaefer_200.csv", dst / "enigma_hcp")
    wrong = dst / "tian_schaefer" / "Schaefer2018_200Parcels_7Networks_order_Tian_Subcortex_S1_MNI152NLin6Asym_2mm.nii.gz"
    wrong.unlink()
    shutil.copy(dst / "tian_schaefer" /
                "Schaefer2018_100Parcels_7Networks_order_Tian_Subcortex_S1_MNI152NLin6Asym_2mm.nii.gz", wrong)
    with pytest.raises(AtlasMismatchError, match="highest label 116, expected 216"):
        load_connectome("enigma-schaefer200", tmp_path, download=False)


def test_structural_matrices_share_the_atlas(data_root):
    sc = load_connectome("enigma-schaefer400-sc", data_root)
    assert sc.kind == "structural" and sc.matrix.shape == (414, 414)
    assert "structural" in sc.units


def test_pinned_checksums_match_the_reference_copies(data_root):
    """Every pinned sha256 is that of the shared copy, and URLs point at the pinned commits."""
    import hashlib

    from neuromodmap.connectome import _data

    for relpath, digest in _data._SHA256.items():
        remote = _data.remote(relpath)
        assert hashlib.sha256((data_root / remote.relpath).read_bytes()).hexdigest() == digest, relpath
        commit = {"enigma_hcp": _data.ENIGMA_COMMIT, "hansen_brainstem": _data.HANSEN_COMMIT,
                  "tian_schaefer": _data.TIAN_COMMIT}[relpath.split("/")[0]]
        assert commit in remote.url and remote.url.endswith(relpath.split("/", 1)[1])
        assert remote.citation and remote.licence


def test_missing_local_file_without_download_is_a_clear_error(tmp_path, monkeypatch):
    from neuromodmap.config import DataNotFoundError

    monkeypatch.setenv("NEUROMODMAP_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("NEUROMODMAP_DATA", raising=False)
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataNotFoundError, match="connectomes/enigma_hcp/funcMatrix_with_ctx_schaefer_300.csv"):
        load_connectome("enigma-schaefer300", tmp_path / "empty", download=False)


def test_hansen_schaefer100_variant(data_root):
    c = load_connectome("hansen-brainstem-schaefer100", data_root)
    assert c.matrix.shape == (183, 183)
    pag = c.seed((0.57, -32.57, -8.94), 3)
    assert c.labels[pag.regions[0]] == "PAG_2020"
    m1 = c.seed((-41, -7, 45), 10)
    assert m1.method == "sphere" and all(c.regions.structure[i] == "cortex" for i in m1.regions)
