"""Fetchers for public data: a local copy first, else a pinned download to the cache."""

from neuromodmap.datasets._fetch import RemoteFile, fetch

__all__ = ["RemoteFile", "fetch"]
