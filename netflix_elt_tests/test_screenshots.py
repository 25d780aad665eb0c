"""The pieces of ``netflix-elt screenshots`` that run in seconds (the full run, with a webserver
over a materialized home, is ``make screenshots``, not part of the test suite)."""

from __future__ import annotations

import socket
import subprocess
import sys

import pytest

from netflix_elt.screenshots import ScreenshotError, free_port, shoot_dashboard, wait_for_http

PNG = b"\x89PNG\r\n\x1a\n"


def _png_size(path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == PNG
    return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")


def test_free_port_is_a_port_nothing_listens_on():
    port = free_port()
    assert 1024 < port < 65536
    with socket.socket() as s:
        s.bind(("127.0.0.1", port))  # still free


def test_waiting_for_a_server_fails_fast_when_its_process_exits():
    proc = subprocess.Popen([sys.executable, "-c", "raise SystemExit(3)"])
    with pytest.raises(ScreenshotError, match="exited with 3"):
        wait_for_http(f"http://127.0.0.1:{free_port()}/server_info", timeout=30, proc=proc)


def test_no_dashboard_means_a_clear_error(tmp_path):
    with pytest.raises(ScreenshotError, match="netflix-elt run"):
        shoot_dashboard(tmp_path / "dashboard" / "index.html", tmp_path / "dashboard.png")


def test_the_dashboard_shot_is_a_png_cut_below_the_last_whole_chart(tmp_path):
    # two "charts" (cards with a drawn plot, as Plotly leaves them), the second too low to fit
    card = ('<div data-chart="{key}" style="height:{h}px;background:#eee;margin:8px">'
            '<div class="plot-container"><svg class="main-svg" width="100" height="50"></svg></div></div>')
    html = tmp_path / "index.html"
    html.write_text("<html><body style='margin:0'><h1>dashboard</h1>"
                    + card.format(key="a", h=300) + card.format(key="b", h=900) + "</body></html>")
    out = tmp_path / "docs" / "dashboard.png"
    shot = shoot_dashboard(html, out, width=800, max_height=1000)
    assert shot.path == out and out.is_file() and shot.size == out.stat().st_size
    width, height = _png_size(out)
    assert width == 800
    assert 300 < height < 600  # ends under chart "a", not at 1000 through the middle of "b"
