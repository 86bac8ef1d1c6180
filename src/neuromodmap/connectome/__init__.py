"""neuromodmap.connectome: map pain and depression stimulation targets onto normative connectomes.

Public API
----------
target_catalogue, read_targets, load_targets
    The built-in target catalogue (literature and atlas-derived rows) and user CSVs.
load_connectome, ParcelConnectome, CONNECTOMES
    Parcel-level normative connectomes (ENIGMA/HCP Schaefer-100..400 and DK-82, Hansen brainstem).
map_targets, TargetMap
    Connectivity profiles, group maps, superficial-vs-deep overlap, hubs, similarity, figures.
site_to_seed, search_anticorrelated
    Fox-style TMS targeting: connectivity of sites to a seed (sgACC by default).
read_target_effects, attach_target_effects, plot_target_effects
    Pooled effects per target (from ``evidence meta --by target``) on the target table and a glass brain.
LeadDBSConnectome, NiftiConnectome, voxel_seed_maps
    Voxel-level seed maps (AvgR, AvgRFz, T) streamed subject by subject on Dask.
"""

from neuromodmap._lazy import lazy_exports

# Names are imported on first use, so `neuromodmap --help` and reading one file stay light.
_EXPORTS = {
    "_atlas": ("ParcelAtlas", "Seed"),
    "_catalogue": ("CATALOGUE_COLUMNS", "FOX_SGACC_SEED", "OMITTED_TARGETS", "load_targets", "read_targets", "target_catalogue"),
    "_effects": ("EFFECT_COLUMNS", "attach_target_effects", "plot_target_effects", "read_target_effects"),
    "_errors": ("AtlasMismatchError", "ConnectomeError", "CoordinateError", "ImageError", "TargetsFileError", "TimeSeriesError"),
    "_mapping": ("DEFAULT_RADIUS", "TargetMap", "map_targets"),
    "_parcel": ("CONNECTOMES", "DEFAULT_CONNECTOME", "ParcelConnectome", "load_connectome"),
    "_targeting": ("SGACC_SEED", "search_anticorrelated", "site_to_seed"),
    "_voxel": ("LeadDBSConnectome", "NiftiConnectome", "VoxelConnectome", "VoxelMaps", "voxel_seed_maps"),
}

__all__ = [
    "AtlasMismatchError",
    "CATALOGUE_COLUMNS",
    "CONNECTOMES",
    "ConnectomeError",
    "CoordinateError",
    "DEFAULT_CONNECTOME",
    "DEFAULT_RADIUS",
    "EFFECT_COLUMNS",
    "FOX_SGACC_SEED",
    "ImageError",
    "LeadDBSConnectome",
    "NiftiConnectome",
    "OMITTED_TARGETS",
    "ParcelAtlas",
    "ParcelConnectome",
    "SGACC_SEED",
    "Seed",
    "TargetMap",
    "TargetsFileError",
    "TimeSeriesError",
    "VoxelConnectome",
    "VoxelMaps",
    "attach_target_effects",
    "load_connectome",
    "load_targets",
    "map_targets",
    "plot_target_effects",
    "read_target_effects",
    "read_targets",
    "search_anticorrelated",
    "site_to_seed",
    "target_catalogue",
    "voxel_seed_maps",
]

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
