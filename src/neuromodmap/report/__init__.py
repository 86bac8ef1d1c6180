"""neuromodmap.report: one self-contained HTML document from the stages' sections.

Each stage renders its own part, a :class:`Section` (headline numbers, text, figures with
captions, tables, methods, sources) written as ``section.json`` into its output folder;
:func:`build_report` assembles the sections it finds, in a fixed order with stable anchors
(``#overview``, ``#trials``, ``#literature``, ``#evidence``, ``#connectome``, ``#methods``).
"""

from neuromodmap._lazy import lazy_exports

# Names are imported on first use, so `neuromodmap --help` and reading one file stay light.
_EXPORTS = {
    "_build": ("ReportWarning", "build_report", "json_for_script"),
    "_section": ("SECTION_FILE", "STAGES", "Block", "Figure", "Headline", "Section", "SectionError", "Source", "Table", "read_section", "software_versions"),
}

__all__ = [
    "SECTION_FILE",
    "STAGES",
    "Block",
    "Figure",
    "Headline",
    "ReportWarning",
    "Section",
    "SectionError",
    "Source",
    "Table",
    "build_report",
    "json_for_script",
    "read_section",
    "software_versions",
]

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
