"""``neuromodmap serve``: a local web app over the trials and review stores.

Pages are server-rendered (Jinja2) with light interactivity from the vendored htmx script (no CDN,
no Node build); every page has a JSON twin under ``/api/``. See docs/webapp.md.
"""

from neuromodmap.webapp.app import create_app

__all__ = ["create_app"]
