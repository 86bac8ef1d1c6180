"""Resolve a data file: a local copy (``--data-dir``/``NEUROMODMAP_DATA``) if there is one,
otherwise download it once from its pinned public URL into the cache and verify its sha256.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

import httpx
from rich.console import Console
from tenacity import retry, retry_if_exception_type, stop_after_attempt, wait_exponential

from neuromodmap._utils import atomic_write
from neuromodmap.config import DataNotFoundError, cache_dir, data_dir

__all__ = ["RemoteFile", "fetch"]

_console = Console(stderr=True)


@dataclass(frozen=True)
class RemoteFile:
    """A file of a public dataset with its pinned location and checksum.

    ``relpath`` is the path inside a local data directory laid out like ``shared/data``
    (e.g. ``connectomes/enigma_hcp/funcMatrix_with_ctx_schaefer_400.csv``).
    """

    relpath: str
    url: str
    sha256: str | None
    citation: str = ""
    licence: str = ""


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


@retry(
    retry=retry_if_exception_type((httpx.TransportError, httpx.HTTPStatusError)),
    wait=wait_exponential(multiplier=1, max=30),
    stop=stop_after_attempt(5),
    reraise=True,
)
def _download(url: str, dest: Path) -> None:
    with httpx.stream("GET", url, follow_redirects=True, timeout=60) as resp:
        resp.raise_for_status()
        with atomic_write(dest, "wb") as fh:
            for chunk in resp.iter_bytes():
                fh.write(chunk)


def fetch(remote: RemoteFile, data_dir_: str | os.PathLike | None = None, *, download: bool = True) -> Path:
    """Return a local path for ``remote``.

    Looks in the explicit data directory, then ``NEUROMODMAP_DATA``, then the cache; downloads
    into the cache only when allowed and not found. A downloaded file whose sha256 differs
    from the pinned one is deleted and reported.
    """
    local_root = data_dir(data_dir_, required=False)
    if local_root is not None and (local_root / remote.relpath).is_file():
        return local_root / remote.relpath
    cached = cache_dir() / remote.relpath
    if cached.is_file():
        return cached
    if not download:
        raise DataNotFoundError(
            f"{remote.relpath} is not in the data directory or cache; allow download or set NEUROMODMAP_DATA"
        )
    _console.print(f"Downloading {remote.url}")
    if remote.licence or remote.citation:
        _console.print(f"  licence: {remote.licence or 'see source'}; cite: {remote.citation}")
    _download(remote.url, cached)
    if remote.sha256:
        digest = _sha256(cached)
        if digest != remote.sha256:
            cached.unlink()
            raise DataNotFoundError(
                f"checksum mismatch for {remote.url}: expected {remote.sha256}, got {digest}"
            )
    return cached
