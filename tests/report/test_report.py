from pathlib import Path

import pytest

from neuromodmap.report import build_report


def test_report_inlines_images_and_links(tmp_path: Path):
    section = tmp_path / "sec"
    (section / "figures").mkdir(parents=True)
    png = bytes.fromhex("89504e470d0a1a0a") + b"\x00" * 32
    (section / "figures" / "a.png").write_bytes(png)
    (section / "page.html").write_text(
        "<html><head><title>Trials &amp; more</title><style>p{}</style></head>"
        "<body><h1>Trials</h1><img src=\"figures/a.png\"><a href=\"https://example.org\">x</a></body></html>"
    )
    out = build_report([section], tmp_path / "report.html", title="R <1>")
    text = out.read_text()
    assert "src=\"figures/a.png\"" not in text
    assert "data:image/png;base64," in text
    assert "https://example.org" in text  # remote links are left as links
    assert "R &lt;1&gt;" in text
    assert "Trials &amp; more" in text


def test_report_errors_name_the_path(tmp_path: Path):
    with pytest.raises(FileNotFoundError, match="nope"):
        build_report([tmp_path / "nope"], tmp_path / "r.html")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="no HTML"):
        build_report([tmp_path / "empty"], tmp_path / "r.html")
    assert not (tmp_path / "r.html").exists()
