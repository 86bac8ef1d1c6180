"""Null models for the superficial-vs-deep overlap, the hubs and the similarity (private).

Three nulls, chosen by name (``--null``):

``random-sites``
    Every target is replaced by a site drawn at random from grey matter of its own depth class
    (cortex, subcortex, brainstem), with the same radius and the same superficial/deep label,
    and mapped exactly as the targets are (:meth:`ParcelConnectome.seed`). Bilateral pairs of
    targets are drawn as mirror-image pairs. It asks whether the targets' maps overlap (or reach
    a region, or resemble each other) more than any sites of the same kind would.
``variogram``
    Surrogates of the deep-target map that keep its spatial autocorrelation (variogram-matched,
    brainsmash's ``Base`` on Euclidean distances between region centroids), correlated with the
    superficial-target map. It asks whether the overlap exceeds what two smooth maps share.
``depth-relabel``
    Random splits of the same targets into groups of the original sizes. It asks whether
    superficial and deep maps are more alike than maps of random halves of the same targets,
    a different question (large when depth does *not* separate the targets).

p-values are one-sided (observed at least as large) with the observed value counted among the
draws: p = (1 + #{null >= observed}) / (1 + n), except for an exhaustive relabelling.
"""

from __future__ import annotations

import itertools
import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from neuromodmap.connectome._errors import ConnectomeError, CoordinateError

__all__ = ["NULL_MODELS", "DEFAULT_NULLS", "DEFAULT_N_NULL", "parse_nulls", "depth_class", "SiteTemplate",
           "SitePools", "draw_sites", "group_r", "top_masks", "dice", "p_upper", "bh_fdr",
           "variogram_surrogates", "VARIOGRAM_PARAMS", "relabel_masks", "MIRROR_TOLERANCE"]

NULL_MODELS: dict[str, str] = {
    "random-sites": "random grey-matter sites of the same depth classes, radii and bilateral pairs, mapped the "
                    "same way",
    "variogram": "variogram-matched surrogates of the deep-target map (brainsmash), keeping its spatial "
                 "autocorrelation",
    "depth-relabel": "random splits of the same targets (are superficial and deep maps more alike than random "
                     "halves?)",
}
DEFAULT_NULLS: tuple[str, ...] = ("random-sites", "variogram", "depth-relabel")
#: what benchmarks/connectome_null_calibration.py measured (400 random target sets shaped like the
#: built-in pain set, 200 draws each, seed 2024; docs/connectome.md, "Calibration"): the share of
#: sets each null rejects at alpha = 0.05 on enigma-schaefer400 / hansen-brainstem
CALIBRATION_REJECTS_AT_05 = {"random-sites": (0.055, 0.052), "variogram": (0.333, 0.998),
                             "depth-relabel": (0.0, 0.0)}
_RS, _VG = CALIBRATION_REJECTS_AT_05["random-sites"], CALIBRATION_REJECTS_AT_05["variogram"]
CALIBRATION_SENTENCE = (
    "In a calibration over 400 random target sets shaped like the built-in pain set "
    "(benchmarks/connectome_null_calibration.py), the random-sites null rejected at its nominal rate "
    f"({100 * _RS[0]:.1f} % and {100 * _RS[1]:.1f} % at alpha = 0.05 on enigma-schaefer400 and hansen-brainstem), "
    f"the variogram surrogates far more often ({100 * _VG[0]:.1f} % and {100 * _VG[1]:.1f} %: surrogates of one map "
    "keep its autocorrelation but not the structure that any two seed-based maps share), and depth relabelling "
    "never; the random-sites p-value is the test of a common network, and a small variogram p-value alone is not "
    "evidence for one.")
#: draws per null (random-site sets, surrogates); relabelling has its own count
DEFAULT_N_NULL = 1000
#: two targets are a bilateral pair when their x have opposite signs and they mirror within this (mm)
MIRROR_TOLERANCE = 4.0
#: brainsmash Base parameters (its defaults, stated so the methods text can quote them)
VARIOGRAM_PARAMS: dict = {"deltas": tuple(np.round(np.linspace(0.1, 0.9, 9), 2)), "kernel": "exp", "pv": 25,
                          "nh": 25, "resample": False}
DEPTH_CLASSES = ("cortex", "subcortex", "brainstem")
_CLASS_OF_STRUCTURE = {"cortex": "cortex", "subcortex": "subcortex", "diencephalon": "subcortex",
                       "brainstem": "brainstem"}


def parse_nulls(null: str | Sequence[str] | None) -> tuple[str, ...]:
    """Null names from ``"a,b"``, a list, ``"all"`` or ``"none"``/``None``; unknown names raise."""
    if null is None:
        return ()
    items = [null] if isinstance(null, str) else list(null)
    names: list[str] = []
    for item in items:
        for name in str(item).split(","):
            name = name.strip().lower()
            if not name or name == "none":
                continue
            if name == "all":
                names.extend(NULL_MODELS)
                continue
            if name not in NULL_MODELS:
                raise ConnectomeError(f"unknown null model {name!r}; choose from {', '.join(NULL_MODELS)}, "
                                      "'all' or 'none'")
            names.append(name)
    return tuple(dict.fromkeys(names))


# ---------------------------------------------------------------------------------------------
# statistics shared by the observed data and the nulls
# ---------------------------------------------------------------------------------------------
def group_r(x: np.ndarray, masks: np.ndarray) -> np.ndarray:
    """Spatial Pearson r between the mean of rows in each mask and the mean of the rest, vectorised.

    ``x`` is (k, n) profiles, ``masks`` (m, k) booleans (True = superficial); returns (m,).
    """
    masks = np.atleast_2d(masks).astype(float)
    a = masks @ x / masks.sum(axis=1, keepdims=True)
    b = (1 - masks) @ x / (1 - masks).sum(axis=1, keepdims=True)
    return rows_r(a, b)


def rows_r(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pearson r between matching rows of ``a`` and ``b`` (broadcast), along the last axis."""
    a = a - a.mean(axis=-1, keepdims=True)
    b = b - b.mean(axis=-1, keepdims=True)
    num = (a * b).sum(axis=-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return num / np.sqrt((a * a).sum(axis=-1) * (b * b).sum(axis=-1))


def top_k(n_finite: int, percent: float) -> int:
    return max(1, int(math.ceil(n_finite * percent / 100.0)))


def top_masks(values: np.ndarray, percent: float) -> np.ndarray:
    """Boolean masks of the top ``percent`` % finite values of each row (at least one region).

    Ties are broken by region order (a stable sort), the same for observed maps and nulls.
    """
    values = np.atleast_2d(values)
    finite = np.isfinite(values)
    out = np.zeros(values.shape, dtype=bool)
    order = np.argsort(np.where(finite, -values, np.inf), axis=1, kind="stable")
    for i, n_finite in enumerate(finite.sum(axis=1)):
        out[i, order[i, : top_k(int(n_finite), percent)]] = True
    return out


def dice(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Dice coefficient of boolean masks, row by row (broadcast)."""
    a, b = np.atleast_2d(a), np.atleast_2d(b)
    return 2.0 * (a & b).sum(axis=1) / (a.sum(axis=1) + b.sum(axis=1))


def p_upper(null: np.ndarray, observed: float) -> float:
    """One-sided Monte-Carlo p: (1 + #{null >= observed}) / (1 + n); NaN draws are dropped."""
    null = np.asarray(null, dtype=float)
    null = null[np.isfinite(null)]
    if observed is None or not np.isfinite(observed) or null.size == 0:
        return float("nan")
    return float((1 + np.sum(null >= observed - 1e-12)) / (1 + null.size))


def bh_fdr(p: np.ndarray) -> np.ndarray:
    """Benjamini-Hochberg adjusted p-values (q), NaN kept."""
    p = np.asarray(p, dtype=float)
    q = np.full(p.shape, np.nan)
    ok = np.flatnonzero(np.isfinite(p))
    if ok.size:
        order = ok[np.argsort(p[ok], kind="stable")]
        ranked = p[order] * ok.size / np.arange(1, ok.size + 1)
        q[order] = np.minimum(1.0, np.minimum.accumulate(ranked[::-1])[::-1])
    return q


def relabel_masks(k: int, n_sup: int, observed: np.ndarray, n_permutations: int,
                  rng: np.random.Generator) -> tuple[np.ndarray, bool]:
    """Depth labellings for the relabelling null: every one when few suffice (exact), else random."""
    n_labelings = math.comb(k, n_sup)
    if n_labelings - 1 <= n_permutations:
        masks = np.zeros((n_labelings, k), dtype=bool)
        for row, combo in enumerate(itertools.combinations(range(k), n_sup)):
            masks[row, list(combo)] = True
        return masks, True
    return np.vstack([rng.permutation(observed) for _ in range(n_permutations)]), False


# ---------------------------------------------------------------------------------------------
# random sites
# ---------------------------------------------------------------------------------------------
def depth_class(connectome, seed) -> str:
    """The depth class (cortex, subcortex, brainstem) of a seed: where most of its weight lies.

    A nucleus seed (own row or bridged) takes its nucleus's structure; diencephalic nuclei
    (subthalamic nucleus, hypothalamus, geniculate bodies) count as subcortex.
    """
    region_class, bridged_class = _classes(connectome)
    if seed.nucleus is not None:
        return bridged_class[seed.nucleus]
    nz = np.flatnonzero(seed.weights)
    if nz.size == 1:
        return region_class[nz[0]]
    totals: dict[str, float] = {}
    for c, w in zip(region_class[nz], seed.weights[nz], strict=True):
        totals[c] = totals.get(c, 0.0) + float(w)
    return max(totals, key=totals.get)


def _classes(connectome) -> tuple[np.ndarray, np.ndarray | None]:
    """Depth class of each region and of each bridged nucleus, computed once per connectome."""
    cached = connectome.__dict__.get("_depth_classes")
    if cached is None:
        def of(structures):
            return np.array([_CLASS_OF_STRUCTURE.get(s, s) for s in structures], dtype=object)

        cached = (of(connectome.regions.structure),
                  None if connectome.bridged is None else of(connectome.bridged.regions.structure))
        connectome.__dict__["_depth_classes"] = cached
    return cached


@dataclass
class SitePools:
    """Where random sites of each depth class are drawn from, for one connectome.

    ``cortex`` and ``subcortex`` are the MNI centres of the atlas voxels whose region has that
    structure (Schaefer and Tian S1 voxels for the Schaefer atlases); a draw is a voxel centre
    moved uniformly within its voxel. ``brainstem`` are the centroids of the connectome's
    brainstem nuclei (its own rows or those bridged in from Hansen et al.): the nuclei have no
    volume here, so a random brainstem site is one nucleus drawn uniformly.
    """

    voxels: dict[str, np.ndarray]
    nuclei: np.ndarray
    nucleus_labels: list[str]
    voxel_size: np.ndarray

    @classmethod
    def of(cls, connectome) -> SitePools:
        cached = connectome.__dict__.get("_site_pools")
        if cached is not None:
            return cached
        xyz, region, _ = connectome.atlas._voxels
        structure = _classes(connectome)[0]
        voxels = {c: xyz[structure[region] == c] for c in ("cortex", "subcortex")}
        frames = []
        if connectome.nuclei.size:
            frames.append(connectome.regions.loc[connectome.nuclei])
        if connectome.bridged is not None:
            frames.append(connectome.bridged.regions)
        nuclei = pd.concat(frames) if frames else pd.DataFrame(columns=["label", "structure", "x", "y", "z"])
        nuclei = nuclei[nuclei.structure == "brainstem"]
        size = np.sqrt((connectome.atlas.image.affine[:3, :3] ** 2).sum(axis=0))
        pools = cls(voxels, nuclei[["x", "y", "z"]].to_numpy(float), nuclei.label.astype(str).tolist(), size)
        connectome.__dict__["_site_pools"] = pools
        return pools

    def size(self, depth: str) -> int:
        return len(self.nuclei) if depth == "brainstem" else len(self.voxels.get(depth, ()))

    def draw(self, depth: str, rng: np.random.Generator) -> np.ndarray:
        if depth == "brainstem":
            return self.nuclei[rng.integers(len(self.nuclei))].copy()
        pool = self.voxels[depth]
        return pool[rng.integers(len(pool))] + rng.uniform(-0.5, 0.5, 3) * self.voxel_size

    def describe(self, connectome) -> str:
        atlas = connectome.atlas.name
        parts = [f"cortex: the {self.size('cortex'):,} cortical voxels of the {atlas} volume",
                 f"subcortex: its {self.size('subcortex'):,} subcortical voxels"]
        if len(self.nuclei):
            parts.append(f"brainstem: the centroids of the {len(self.nuclei)} brainstem nuclei of Hansen et al. "
                         "(no volume is available, so a random brainstem site is a nucleus drawn uniformly)")
        return "; ".join(parts)


@dataclass
class SiteTemplate:
    """The structure the random sites copy: depth class and radius per target, bilateral pairs."""

    classes: np.ndarray
    radii: np.ndarray
    partner: np.ndarray  # index of the target this one mirrors, or -1

    @classmethod
    def from_targets(cls, xyz: np.ndarray, classes, radii, depth=None,
                     tolerance: float = MIRROR_TOLERANCE) -> SiteTemplate:
        """Pairs are targets of one class, radius and depth label whose x have opposite signs
        (|x| >= 2 mm) and whose mirror images lie within ``tolerance`` mm on each axis."""
        xyz = np.asarray(xyz, dtype=float).reshape(-1, 3)
        classes = np.asarray(classes, dtype=object)
        radii = np.asarray(radii, dtype=float)
        depth = np.asarray(depth if depth is not None else [""] * len(xyz), dtype=object)
        partner = np.full(len(xyz), -1)
        paired: set[int] = set()
        for i, j in itertools.combinations(range(len(xyz)), 2):
            if i in paired or j in paired:
                continue
            a, b = xyz[i], xyz[j]
            if (classes[i] == classes[j] and radii[i] == radii[j] and depth[i] == depth[j]
                    and a[0] * b[0] < 0 and min(abs(a[0]), abs(b[0])) >= 2.0
                    and np.all(np.abs(a * [-1, 1, 1] - b) <= tolerance)):
                partner[j] = i
                paired.update((i, j))
        return cls(classes, radii, partner)

    @property
    def n_pairs(self) -> int:
        return int((self.partner >= 0).sum())

    def class_counts(self) -> dict[str, int]:
        return {c: int((self.classes == c).sum()) for c in DEPTH_CLASSES if (self.classes == c).any()}


def draw_sites(connectome, template: SiteTemplate, rng: np.random.Generator, max_distance: float,
               max_tries: int = 1000) -> tuple[np.ndarray, list]:
    """One random site set: coordinates (k, 3) and their seeds, each in its target's class.

    A draw whose seed falls outside the target's class (e.g. a cortical voxel whose sphere is
    mostly putamen) or that maps nowhere is drawn again; a mirrored partner that fails redraws
    the pair.
    """
    pools = SitePools.of(connectome)
    k = len(template.classes)
    coords = np.zeros((k, 3))
    seeds: list = [None] * k
    followers = {int(template.partner[j]): j for j in range(k) if template.partner[j] >= 0}
    for i in range(k):
        if template.partner[i] >= 0:
            continue
        depth = template.classes[i]
        if pools.size(depth) == 0:
            raise ConnectomeError(f"random-sites null: {connectome.name} has no {depth} grey matter to draw from")
        j = followers.get(i)
        for _ in range(max_tries):
            c = pools.draw(depth, rng)
            s = _seed_in_class(connectome, c, template.radii[i], depth, max_distance)
            if s is None:
                continue
            if j is not None:
                cj = c * [-1.0, 1.0, 1.0]
                sj = _seed_in_class(connectome, cj, template.radii[j], depth, max_distance)
                if sj is None:
                    continue
                coords[j], seeds[j] = cj, sj
            coords[i], seeds[i] = c, s
            break
        else:
            raise ConnectomeError(f"random-sites null: no {depth} site of radius {template.radii[i]:g} mm mapped "
                                  f"into its class on {connectome.name} in {max_tries} tries")
    return coords, seeds


def _seed_in_class(connectome, coord, radius, depth, max_distance):
    try:
        seed = connectome.seed(coord, float(radius), max_distance)
    except CoordinateError:
        return None
    return seed if depth_class(connectome, seed) == depth else None


# ---------------------------------------------------------------------------------------------
# variogram-matched surrogates (brainsmash)
# ---------------------------------------------------------------------------------------------
def _fast_base():
    """brainsmash's ``Base`` with its smoothing and variogram steps as dense matrix products.

    ``Base.smooth_map`` loops in Python over up to 0.9·n neighbours on masked arrays, and
    ``compute_smooth_variogram`` rebuilds its kernel weights on every call. Here the k-nearest-
    neighbour kernel of each delta is a dense (n, n) row-normalised matrix, the variogram
    weights are computed once and the permuted maps are plain arrays (our maps have no NaN).
    The algorithm, random stream and output are brainsmash's (equal to 1e-12 in the tests),
    about 7x faster for 481 regions.
    """
    from brainsmash.mapgen.base import Base

    class FastBase(Base):
        def permute_map(self, i=1):
            perm_idx = self._rs.random_sample((self._x.size, i)).argsort(axis=0)
            return np.asarray(self._x.data)[perm_idx]

        def _kernel_matrix(self, delta):
            cache = self.__dict__.setdefault("_kernel_cache", {})
            if delta not in cache:
                w = self._kernel(self._dkn[delta])
                w = w / w.sum(axis=1, keepdims=True)
                dense = np.zeros((self._nmap, self._nmap))
                np.put_along_axis(dense, self._jkn[delta], w, axis=1)
                cache[delta] = dense
            return cache[delta]

        def smooth_map(self, x, delta):
            return self._kernel_matrix(delta) @ np.asarray(x)

        def compute_smooth_variogram(self, x, return_h=False):
            if "_vario_w" not in self.__dict__:
                u = self._u[self._uidx]
                w = np.exp(-np.square(2.68 * np.abs(u - self._h[:, None]) / self._b) / 2)
                self._vario_w = w / np.nansum(w, axis=1)[:, None]
                self._vario_i = (self._triu[0][self._uidx], self._triu[1][self._uidx])
            x = np.asarray(x)
            if x.ndim < 2:
                x = x[..., None]
            v = 0.5 * np.square(x[self._vario_i[1]] - x[self._vario_i[0]])
            out = np.squeeze(self._vario_w @ v)
            return (out, self._h) if return_h else out

    return FastBase


def variogram_surrogates(values: np.ndarray, distances: np.ndarray, n: int, seed: int,
                         batch_size: int = 100) -> np.ndarray:
    """``n`` variogram-matched surrogates of ``values`` (brainsmash ``Base``, parameters in
    :data:`VARIOGRAM_PARAMS`), shape (n, len(values))."""
    from brainsmash.mapgen.base import Base

    def generate(cls) -> np.ndarray:
        base = cls(np.asarray(values, dtype=float), np.asarray(distances, dtype=float),
                   deltas=np.asarray(VARIOGRAM_PARAMS["deltas"]), kernel=VARIOGRAM_PARAMS["kernel"],
                   pv=VARIOGRAM_PARAMS["pv"], nh=VARIOGRAM_PARAMS["nh"], resample=VARIOGRAM_PARAMS["resample"],
                   seed=seed)
        out, done = [], 0
        while done < n:
            m = min(batch_size, n - done)
            out.append(np.atleast_2d(base(n=m, batch_size=m)))
            done += m
        return np.vstack(out)

    with warnings.catch_warnings():
        # brainsmash 0.11 calls np.row_stack, deprecated in numpy 2
        warnings.simplefilter("ignore", DeprecationWarning)
        try:
            return generate(_fast_base())
        except AttributeError:  # a brainsmash whose private attributes changed: its own, slower code
            return generate(Base)



# ---------------------------------------------------------------------------------------------
# running the nulls for one mapping
# ---------------------------------------------------------------------------------------------
#: a fixed stream per null, so that adding or dropping one null leaves the others' draws unchanged
_STREAM = {"random-sites": 1, "variogram": 2, "depth-relabel": 3}
#: random-site sets whose profiles are computed in one matrix product
_BATCH = 100
SIMILARITY_COMPARISONS = ("within superficial", "within deep", "between superficial and deep")


@dataclass
class Analysis:
    """One superficial-vs-deep comparison: the targets of one indication (positions in the profiles)."""

    indication: str
    idx: np.ndarray
    is_sup: np.ndarray

    def maps(self, profiles: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        x = profiles[self.idx]
        return x[self.is_sup].mean(axis=0), x[~self.is_sup].mean(axis=0)


def overlap_observed(profiles: np.ndarray, analysis: Analysis, percent: float) -> dict:
    sup_map, deep_map = analysis.maps(profiles)
    top_sup, top_deep = top_masks(sup_map, percent)[0], top_masks(deep_map, percent)[0]
    both = top_sup & top_deep
    return {"indication": analysis.indication, "r": float(rows_r(sup_map, deep_map)),
            "dice": float(dice(top_sup, top_deep)[0]), "n_superficial": int(analysis.is_sup.sum()),
            "n_deep": int((~analysis.is_sup).sum()), "superficial": sup_map, "deep": deep_map,
            "conjunction": np.where(both, np.minimum(sup_map, deep_map), 0.0), "n_conjunction": int(both.sum())}


def similarity_stats(profiles: np.ndarray, analysis: Analysis) -> np.ndarray:
    """Mean profile correlation within superficial, within deep and between the two groups."""
    x = profiles[analysis.idx]
    with np.errstate(invalid="ignore", divide="ignore"):
        c = np.corrcoef(x)
    s = analysis.is_sup
    out = []
    for a, b in ((s, s), (~s, ~s), (s, ~s)):
        block = c[np.ix_(a, b)]
        if a is b or (a == b).all():
            block = block[~np.eye(len(block), dtype=bool)]
        out.append(float(np.nanmean(block)) if block.size else np.nan)
    return np.array(out)


@dataclass
class NullDraws:
    """What each null produced: per analysis r/Dice draws, hub counts and similarity draws."""

    r: dict[tuple[str, str], np.ndarray]
    dice: dict[tuple[str, str], np.ndarray]
    observed_subset: dict[tuple[str, str], tuple[float, float, int]]
    exact: dict[tuple[str, str], bool]
    hub_counts: np.ndarray | None
    similarity: dict[str, np.ndarray]
    n_draws: dict[str, int]
    notes: dict[str, str]


def run_nulls(connectome, profiles: np.ndarray, mapped: pd.DataFrame, seeds: list, analyses: list[Analysis],
              nulls: tuple[str, ...], *, percent: float, n_null: int, n_permutations: int, random_state: int,
              max_distance: float, progress: bool = False) -> NullDraws:
    """Draw every selected null once for all analyses (and the hubs and similarity).

    BLAS runs on one thread here: the products are small (hundreds of regions), and on a busy
    machine OpenBLAS's thread pool made the surrogates 5-15x slower than one thread.
    """
    from threadpoolctl import threadpool_limits

    from neuromodmap._utils import progress_bar

    out = NullDraws({}, {}, {}, {}, None, {}, {}, {})
    with progress_bar(transient=True, disable=not progress) as bar, threadpool_limits(limits=1, user_api="blas"):
        if "random-sites" in nulls:
            rng = np.random.default_rng([random_state, _STREAM["random-sites"]])
            classes = [depth_class(connectome, s) for s in seeds]
            template = SiteTemplate.from_targets(mapped[["x", "y", "z"]].to_numpy(float), classes,
                                                 mapped["radius_used"].to_numpy(float),
                                                 mapped["depth"].astype(str).to_numpy())
            task = bar.add_task("random-sites null", total=n_null)
            r = np.full((len(analyses), n_null), np.nan)
            d = np.full((len(analyses), n_null), np.nan)
            sim = np.full((len(analyses), n_null, 3), np.nan)
            counts = np.zeros((n_null, connectome.n_regions), dtype=np.int32)
            k = len(template.classes)
            for start in range(0, n_null, _BATCH):
                batch = range(start, min(start + _BATCH, n_null))
                site_seeds = []
                for _ in batch:
                    site_seeds += draw_sites(connectome, template, rng, max_distance)[1]
                    bar.advance(task)
                # one matrix product per batch of draws (the same profiles as one seed at a time)
                p_all = connectome.seed_profiles(site_seeds).reshape(len(batch), k, -1)
                for i, b in enumerate(batch):
                    p = p_all[i]
                    counts[b] = top_masks(p, percent).sum(axis=0)
                    for a, analysis in enumerate(analyses):
                        sup_map, deep_map = analysis.maps(p)
                        r[a, b] = rows_r(sup_map, deep_map)
                        d[a, b] = dice(top_masks(sup_map, percent), top_masks(deep_map, percent))[0]
                        sim[a, b] = similarity_stats(p, analysis)
            for a, analysis in enumerate(analyses):
                out.r[(analysis.indication, "random-sites")] = r[a]
                out.dice[(analysis.indication, "random-sites")] = d[a]
                out.similarity[analysis.indication] = sim[a]
            out.hub_counts = counts
            out.n_draws["random-sites"] = n_null
            pools = SitePools.of(connectome)
            counts_text = ", ".join(f"{n} {c}" for c, n in template.class_counts().items())
            out.notes["random-sites"] = (
                f"{n_null} random site sets copying the targets' depth classes ({counts_text}), radii, "
                f"superficial/deep labels and {template.n_pairs} bilateral pair(s) (mirror images within "
                f"{MIRROR_TOLERANCE:g} mm, drawn as mirrored sites); grey matter per class: "
                f"{pools.describe(connectome)}")
        if "variogram" in nulls and analyses:
            xyz = connectome.regions[["x", "y", "z"]].to_numpy(float)
            keep = np.isfinite(xyz).all(axis=1)
            from scipy.spatial.distance import cdist

            distances = cdist(xyz[keep], xyz[keep])
            task = bar.add_task("variogram surrogates", total=n_null * len(analyses))
            for a, analysis in enumerate(analyses):
                sup_map, deep_map = analysis.maps(profiles)
                seed = int(np.random.default_rng([random_state, _STREAM["variogram"], a]).integers(2**31 - 1))
                surr = variogram_surrogates(deep_map[keep], distances, n_null, seed)
                bar.advance(task, n_null)
                sup = sup_map[keep]
                top_sup = top_masks(sup, percent)
                key = (analysis.indication, "variogram")
                out.r[key] = rows_r(sup[None, :], surr)
                out.dice[key] = dice(top_sup, top_masks(surr, percent))
                out.observed_subset[key] = (float(rows_r(sup, deep_map[keep])),
                                            float(dice(top_sup, top_masks(deep_map[keep], percent))[0]),
                                            int(keep.sum()))
            out.n_draws["variogram"] = n_null
            dropped = int((~keep).sum())
            out.notes["variogram"] = (
                f"{n_null} variogram-matched surrogates of the deep-target map (brainsmash Base: Euclidean "
                f"distances between the centroids of {int(keep.sum())} regions"
                + (f", {dropped} region(s) without a centroid left out" if dropped else "")
                + f"; deltas {VARIOGRAM_PARAMS['deltas'][0]:g}-{VARIOGRAM_PARAMS['deltas'][-1]:g} in "
                f"{len(VARIOGRAM_PARAMS['deltas'])} steps, {VARIOGRAM_PARAMS['kernel']} kernel, pv = "
                f"{VARIOGRAM_PARAMS['pv']}, nh = {VARIOGRAM_PARAMS['nh']}, resample = "
                f"{VARIOGRAM_PARAMS['resample']}), each compared with the superficial-target map")
        if "depth-relabel" in nulls and analyses:
            rng = np.random.default_rng([random_state, _STREAM["depth-relabel"]])
            for analysis in analyses:
                x = profiles[analysis.idx]
                masks, exact = relabel_masks(len(analysis.idx), int(analysis.is_sup.sum()), analysis.is_sup,
                                             n_permutations, rng)
                key = (analysis.indication, "depth-relabel")
                out.r[key] = group_r(x, masks)
                m = masks.astype(float)
                a_maps = m @ x / m.sum(axis=1, keepdims=True)
                b_maps = (1 - m) @ x / (1 - m).sum(axis=1, keepdims=True)
                out.dice[key] = dice(top_masks(a_maps, percent), top_masks(b_maps, percent))
                out.exact[key] = exact
            out.n_draws["depth-relabel"] = n_permutations
            out.notes["depth-relabel"] = (
                f"up to {n_permutations} relabellings of target depth among the same targets (every one when fewer "
                "exist); this asks whether superficial and deep maps are more alike than maps of random splits "
                "of the same targets, not whether they share a network")
    return out


def p_value(null: np.ndarray, observed: float, exact: bool) -> float:
    """Monte-Carlo p, or the exact proportion when the null enumerates every relabelling."""
    if exact:
        null = np.asarray(null, dtype=float)
        return float(np.mean(null >= observed - 1e-12))
    return p_upper(null, observed)
