"""The pieces of ``tools/screenshots.py`` that run in seconds, with Playwright on Debian's
Chromium (the full run, a fresh home and the UI, is ``make screenshots``, not part of the suite;
``test_pictures.py`` checks that its pictures are current)."""

from __future__ import annotations

import pytest

from tools.screenshots import ScreenshotError, shoot_dashboard

PNG = b"\x89PNG\r\n\x1a\n"


def _png_size(path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == PNG
    return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")


def test_no_dashboard_means_a_clear_error(tmp_path):
    with pytest.raises(ScreenshotError, match="netflix-elt run"):
        shoot_dashboard(tmp_path / "dashboard" / "index.html", tmp_path / "dashboard.png")


def _page(tmp_path, body: str):
    # "charts" as Plotly leaves them: cards with a drawn plot (an svg and its points)
    card = ('<div data-chart="{key}" data-points="1" style="height:{h}px;background:#eee;margin:8px">'
            '<div class="plot-container"><svg class="main-svg" width="100" height="50">'
            '<circle class="point" cx="5" cy="5" r="3"/></svg></div></div>')
    html = tmp_path / "index.html"
    html.write_text("<html><body style='margin:0'><h1>dashboard</h1>"
                    + "".join(card.format(key=k, h=h) for k, h in body) + "</body></html>")
    return html


def test_the_dashboard_shot_is_a_png_cut_below_the_last_whole_chart(tmp_path):
    html = _page(tmp_path, [("a", 300), ("b", 900)])  # "b" too low to fit in 1000 px
    out = tmp_path / "docs" / "dashboard.png"
    shot = shoot_dashboard(html, out, width=800, max_height=1000)
    assert shot.path == out and out.is_file()
    assert shot.record["charts"] == ["a", "b"]
    width, height = _png_size(out)
    assert width == 800
    assert 300 < height < 600  # ends under chart "a", not at 1000 through the middle of "b"


def test_a_dashboard_logging_errors_is_refused(tmp_path):
    html = _page(tmp_path, [("a", 300)])
    html.write_text(html.read_text().replace("</body>", "<script>console.error('boom')</script></body>"))
    with pytest.raises(ScreenshotError, match="boom"):
        shoot_dashboard(html, tmp_path / "dashboard.png", width=800, max_height=1000)
