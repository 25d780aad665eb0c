"""The README's pictures are current with the code: ``docs/pictures.json`` (written by
``tools/screenshots.py`` next to the pictures) records the asset graph ``docs/asset-graph.png``
was made from; it must be the code location's. No browser, no webserver: seconds."""

from __future__ import annotations

import json

import pytest

from netflix_elt.settings import REPO_ROOT
from tools.screenshots import ASSET_PAGE_KEY, RECORD, asset_graph_record

DOCS = REPO_ROOT / "docs"
REMAKE = "the README's pictures are stale: remake them with `make screenshots` (.venv/bin/python tools/screenshots.py) and commit docs/"


@pytest.fixture(scope="module")
def record() -> dict:
    path = DOCS / RECORD
    assert path.is_file(), f"no {path}: {REMAKE}"
    return json.loads(path.read_text())


@pytest.fixture(scope="module")
def code() -> dict:
    return asset_graph_record()


def test_every_picture_is_in_docs_and_recorded(record):
    names = ("asset-graph.png", "asset-page.png", "run-page.png", "dashboard.png")
    assert sorted(record["pictures"]) == sorted(names), REMAKE
    for name in names:
        data = (DOCS / name).read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 20_000, f"docs/{name}: {REMAKE}"


def test_the_asset_graph_picture_shows_the_code_locations_assets(record, code):
    shown = record["pictures"]["asset-graph.png"]
    gone = sorted(set(shown["asset_keys"]) - set(code["asset_keys"]))
    new = sorted(set(code["asset_keys"]) - set(shown["asset_keys"]))
    assert shown["asset_keys"] == code["asset_keys"], \
        f"{REMAKE}\n  in the picture, no longer in the code: {gone}\n  in the code, not in the picture: {new}"


def test_the_asset_graph_picture_shows_the_code_locations_edges(record, code):
    shown = set(record["pictures"]["asset-graph.png"]["edges"])
    now = set(code["edges"])
    assert shown == now, (f"{REMAKE}\n  edges in the picture only: {sorted(shown - now)}\n"
                          f"  edges in the code only: {sorted(now - shown)}")
    assert record["pictures"]["asset-graph.png"]["groups"] == code["groups"], REMAKE


def test_the_asset_page_picture_is_of_an_asset_that_still_exists(record, code):
    key = record["pictures"]["asset-page.png"]["asset_key"]
    assert key == ASSET_PAGE_KEY and key in code["asset_keys"], REMAKE


def test_the_record_notices_a_renamed_model():
    """Not vacuous: a picture made before a model was renamed (monthly -> yearly) is caught."""
    import dagster as dg

    before = dg.Definitions(assets=[dg.AssetSpec("fct_user_activity_monthly"),
                                    dg.AssetSpec("mart_users", deps=["fct_user_activity_monthly"])])
    after = dg.Definitions(assets=[dg.AssetSpec("fct_user_activity_yearly"),
                                   dg.AssetSpec("mart_users", deps=["fct_user_activity_yearly"])])
    assert asset_graph_record(before)["edges"] == ["fct_user_activity_monthly -> mart_users"]
    assert asset_graph_record(before) != asset_graph_record(after)
