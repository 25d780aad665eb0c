"""What the UI tells about the data after `netflix-elt run`, read through the webserver's GraphQL
API (what the asset pages call): row counts, columns with types and descriptions, column-level
lineage from raw to mart, kinds/owners/layer tags, freshness evaluated by the daemon, and the
named job a `make run` shows up as.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import dagster as dg
import duckdb
import pytest

from netflix_elt.asset_labels import warehouse_kind
from netflix_elt_tests import graphql_api as ui
from netflix_elt_tests.dagster_stack import built_home as fresh_built_home, running_stack

pytestmark = pytest.mark.slow

METADATA_QUERY = """
query AssetStory($assetKeys: [AssetKeyInput!]!) {
  assetNodes(assetKeys: $assetKeys) {
    assetKey { path }
    kinds
    owners { ... on TeamAssetOwner { team } ... on UserAssetOwner { email } }
    tags { key value }
    isMaterializable
    assetMaterializations(limit: 1) {
      metadataEntries {
        label
        ... on IntMetadataEntry { intValue }
        ... on MarkdownMetadataEntry { mdStr }
        ... on TableSchemaMetadataEntry { schema { columns { name type description } } }
        ... on TableColumnLineageMetadataEntry { lineage { columnName columnDeps { assetKey { path } columnName } } }
      }
    }
  }
}
"""

FRESHNESS_QUERY = """
query Freshness($assetKeys: [AssetKeyInput!]!) {
  assetNodes(assetKeys: $assetKeys) { assetKey { path } freshnessStatusInfo { freshnessStatus } }
}
"""

# One column's way from the delivered file to a mart: every hop must be in the lineage.
RATING_TO_MART = [
    ("marts/mart_movie_analysis", "avg_rating", "core/fct_movie_ratings_yearly", "rating_sum"),
    ("core/fct_movie_ratings_yearly", "rating_sum", "core/fct_ratings", "rating"),
    ("core/fct_ratings", "rating", "staging/stg_ratings", "rating"),
    ("staging/stg_ratings", "rating", "raw/ratings", "rating"),
]
# ... and through the genre bridge, whose rows come from unnesting each movie's genres.
MOVIES_TO_GENRE_MART = [
    ("marts/mart_genre_rating_distribution", "movies_count", "core/bridge_movie_genres", "movie_id"),
    ("core/bridge_movie_genres", "genre", "staging/stg_movies", "genres"),
    ("staging/stg_movies", "genres", "raw/movies", "genres"),
]


@pytest.fixture(scope="module")
def built_home(tmp_path_factory, warm_dbt_servers):
    return fresh_built_home(tmp_path_factory, "asset-story")


@pytest.fixture(scope="module")
def stack(built_home):
    with running_stack(built_home) as stack:
        yield stack


@pytest.fixture(scope="module")
def nodes(stack) -> dict[str, dict]:
    """Every asset node as the asset pages see it, by key string, with its latest
    materialization's metadata by label."""
    keys = [n["assetKey"]["path"] for n in stack.graphql("{ assetNodes { assetKey { path } } }")["assetNodes"]]
    found = stack.graphql(METADATA_QUERY, {"assetKeys": [{"path": k} for k in keys]})["assetNodes"]
    out = {}
    for node in found:
        latest = node["assetMaterializations"][0]["metadataEntries"] if node["assetMaterializations"] else []
        out["/".join(node["assetKey"]["path"])] = dict(node, latest={e["label"]: e for e in latest})
    return out


def dbt_nodes(nodes: dict) -> dict:
    return {key: node for key, node in nodes.items() if "dbt" in node["kinds"]}


def warehouse_count(home, relation: str) -> int:
    con = duckdb.connect(str(home / "warehouse.duckdb"), read_only=True)
    try:
        return con.execute(f"select count(*) from {relation}").fetchone()[0]
    finally:
        con.close()


def test_every_table_dbt_built_shows_a_row_count_equal_to_the_warehouse_table(nodes, built_home):
    counted = {}
    for key, node in dbt_nodes(nodes).items():
        if key == "staging/stg_ratings" or key.startswith("staging/stg_"):
            continue  # views: counting one would run its whole query
        assert "dagster/row_count" in node["latest"], f"{key} has no row count"
        counted[key] = node["latest"]["dagster/row_count"]["intValue"]
    assert len(counted) >= 15
    for key in ("core/fct_ratings", "marts/mart_movie_analysis", "snapshots/snap_movies", "staging/genres"):
        schema, name = key.split("/")
        assert counted[key] == warehouse_count(built_home, f"{schema}.{name}") > 0, key


def test_every_dbt_asset_lists_its_columns_with_their_warehouse_types(nodes):
    for key, node in dbt_nodes(nodes).items():
        schema = node["latest"].get("dagster/column_schema")
        assert schema, f"{key}: no column schema on its materialization"
        columns = schema["schema"]["columns"]
        assert columns and all(c["type"] and c["type"] != "?" for c in columns), (key, columns)
    fct = {c["name"]: c for c in nodes["core/fct_ratings"]["latest"]["dagster/column_schema"]["schema"]["columns"]}
    assert fct["rating"]["type"].startswith("decimal")
    assert fct["rating"]["description"], "the dbt project's column description reaches the UI"


@pytest.mark.parametrize("path", [RATING_TO_MART, MOVIES_TO_GENRE_MART], ids=["rating", "genres"])
def test_column_lineage_runs_from_the_raw_column_to_a_mart_column(nodes, path):
    for asset, column, parent, parent_column in path:
        lineage = nodes[asset]["latest"].get("dagster/column_lineage")
        assert lineage, f"{asset}: no column lineage"
        deps = {c["columnName"]: c["columnDeps"] for c in lineage["lineage"]}
        assert {"/".join(d["assetKey"]["path"]) + "." + d["columnName"] for d in deps[column]} >= {
            f"{parent}.{parent_column}"}, (asset, column, deps[column])
        # the same lineage as a table, which the open-source UI shows on the asset page
        table = nodes[asset]["latest"]["column_lineage_table"]["mdStr"]
        assert f"| `{column}` |" in table and f"`{parent}.{parent_column}`" in table


def test_a_snapshots_columns_come_from_its_relation_and_dbts_own_fields_from_no_column(nodes):
    lineage = nodes["snapshots/snap_movies"]["latest"].get("dagster/column_lineage")
    assert lineage, "snapshots/snap_movies: no column lineage"
    deps = {c["columnName"]: {"/".join(d["assetKey"]["path"]) + "." + d["columnName"] for d in c["columnDeps"]}
            for c in lineage["lineage"]}
    assert deps["title"] == {"staging/stg_movies.title"} and deps["genres"] == {"staging/stg_movies.genres"}
    assert deps["dbt_valid_from"] == deps["dbt_scd_id"] == set()
    columns = {c["name"] for c in nodes["snapshots/snap_movies"]["latest"]["dagster/column_schema"]["schema"]["columns"]}
    assert set(deps) == columns  # every column the warehouse has, each with its source or none


def test_assets_carry_the_kind_of_their_warehouse_and_store_their_owners_and_layer(nodes):
    local = warehouse_kind("local")
    assert {"table", local} <= set(nodes["raw/ratings"]["kinds"])
    assert {"dbt", local} <= set(nodes["marts/mart_movie_analysis"]["kinds"])
    assert "folder" in nodes["s3/ratings"]["kinds"]
    assert "snowflake" not in {kind for node in nodes.values() for kind in node["kinds"]}
    tags = lambda key: {t["key"]: t["value"] for t in nodes[key]["tags"]}  # noqa: E731
    assert tags("marts/mart_movie_analysis")["layer"] == "mart"
    assert tags("raw/movies")["layer"] == "raw"
    for key, node in nodes.items():
        assert node["owners"], f"{key} has no owner"


def test_a_production_build_labels_the_same_assets_for_snowflake_and_s3():
    from netflix_elt.definitions import build_definitions
    from netflix_elt.settings import Settings, SnowflakeSettings

    prod = Settings(target="prod", store="s3", snowflake=SnowflakeSettings(account="an-account", user="a-user"))
    graph = build_definitions(prod).resolve_asset_graph()
    kinds = {node.key.to_user_string(): set(node.kinds) for node in graph.asset_nodes}
    assert {"dbt", "snowflake"} <= kinds["marts/mart_movie_analysis"]
    assert {"table", "snowflake"} <= kinds["raw/ratings"]
    assert "s3" in kinds["s3/ratings"] and "folder" not in kinds["s3/ratings"]
    assert not any("duckdb" in k for k in kinds.values())


def test_make_run_shows_in_the_run_history_as_the_full_pipeline_job(stack):
    [run] = ui.runs(stack, limit=5)
    assert run["jobName"] == "full_pipeline"


def test_the_daemon_flags_a_mart_not_rebuilt_since_the_month_began_and_passes_a_fresh_one(tmp_path, warm_dbt_servers):
    """Freshness as the UI shows it: the daemon evaluates each asset's policy. Time cannot pass in a
    test, so the instance is given a mart last materialized 40 days ago (and one materialized now);
    nothing else about the check is arranged."""
    from dagster._core.test_utils import freeze_time  # the event's timestamp only

    home = tmp_path / "home"
    stale, fresh = dg.AssetKey(["marts", "mart_movie_analysis"]), dg.AssetKey(["marts", "mart_movie_releases"])
    with running_stack(home, env={"FRESHNESS_DAEMON_INTERVAL_SECONDS": "2"}) as stack:
        with dg.DagsterInstance.from_config(str(home / "dagster_home")) as instance:
            with freeze_time(datetime.now(timezone.utc) - timedelta(days=40)):
                instance.report_runless_asset_event(dg.AssetMaterialization(stale))
            instance.report_runless_asset_event(dg.AssetMaterialization(fresh))

        def states():
            found = stack.graphql(FRESHNESS_QUERY, {"assetKeys": [{"path": k.path} for k in (stale, fresh)]})
            return {"/".join(n["assetKey"]["path"]): (n["freshnessStatusInfo"] or {}).get("freshnessStatus")
                    for n in found["assetNodes"]}

        deadline = datetime.now() + timedelta(seconds=90)
        while states() != {stale.to_user_string(): "DEGRADED", fresh.to_user_string(): "HEALTHY"}:
            assert datetime.now() < deadline, f"freshness as the UI shows it: {states()}"
            import time
            time.sleep(2)
