"""The asset graph as the UI shows it: unbroken lineage, every dbt test a check, one catalogue."""

from __future__ import annotations

import json

import dagster as dg
import pytest

from netflix_elt.assets.dbt import translator
from netflix_elt.dbt_manifest import dbt_project
from netflix_elt.definitions import defs
from netflix_elt.movielens import DATASETS, LOAD_METADATA_COLUMNS

MARTS = ("mart_movie_analysis", "mart_genre_rating_distribution", "mart_user_engagement_summary",
         "mart_tag_relevance_analysis", "mart_movie_release_trends", "mart_movie_releases")
# dbt's own names for generic tests (`not_null_<model>_<column>`...), which this project replaces
# with `<relation>__<what it guarantees>` (docs/dbt-tests.md)
DBT_GENERATED_PREFIXES = ("source_", "unique_", "not_null_", "relationships_", "accepted_values_", "value_between_",
                          "in_half_steps_", "unique_combination_of_columns_")


@pytest.fixture(scope="module")
def graph():
    return defs.resolve_asset_graph()


@pytest.fixture(scope="module")
def manifest():
    return json.loads(dbt_project.manifest_path.read_text())


def keys_in_group(graph, group: str) -> set[dg.AssetKey]:
    return {k for k in graph.get_all_asset_keys() if graph.get(k).group_name == group}


def test_there_is_one_s3_file_asset_and_one_raw_table_asset_per_dataset(graph):
    names = {ds.name for ds in DATASETS}
    assert keys_in_group(graph, "s3") == {dg.AssetKey(["s3", n]) for n in names}
    assert {k for k in keys_in_group(graph, "raw")} == {dg.AssetKey(["raw", n]) for n in names}


def test_each_raw_table_asset_reads_its_own_s3_file_asset(graph):
    for ds in DATASETS:
        assert graph.get(dg.AssetKey(["raw", ds.name])).parent_keys == {dg.AssetKey(["s3", ds.name])}


def test_only_ratings_is_partitioned_by_month_among_the_files_and_tables(graph):
    for ds in DATASETS:
        for layer in ("s3", "raw"):
            node = graph.get(dg.AssetKey([layer, ds.name]))
            assert (node.partitions_def is not None) == ds.partitioned_by_month


def test_each_dbt_source_is_the_raw_table_asset_that_loads_it(manifest):
    sources = manifest["sources"].values()
    assert {(s["source_name"], s["name"]) for s in sources} == {("raw", ds.name) for ds in DATASETS}
    for source in sources:
        assert translator.get_asset_key(source) == dg.AssetKey(["raw", source["name"]])


def test_the_dbt_sources_declare_exactly_the_catalogue_columns_and_types(manifest):
    """The catalogue (netflix_elt/movielens.py) is the one source of truth for the raw tables:
    each dbt source lists its columns, then the load metadata, with the types the loader creates."""
    by_name = {s["name"]: s for s in manifest["sources"].values()}
    for ds in DATASETS:
        declared = [(c["name"].lower(), (c.get("data_type") or "").lower()) for c in by_name[ds.name]["columns"].values()]
        expected = [(c.name.lower(), c.sql_type.lower()) for c in ds.columns]
        expected += [(name, sql_type.lower()) for name, sql_type in LOAD_METADATA_COLUMNS]
        assert declared == expected, ds.name


def test_every_s3_file_has_a_path_to_at_least_one_mart(graph):
    marts = keys_in_group(graph, "marts")
    assert len(marts) == 6
    for ds in DATASETS:
        seen, frontier = set(), [dg.AssetKey(["s3", ds.name])]
        while frontier:
            key = frontier.pop()
            for child in graph.get(key).child_keys:
                if child not in seen:
                    seen.add(child)
                    frontier.append(child)
        assert seen & marts, f"s3/{ds.name} reaches no mart"


def test_the_dbt_groups_are_staging_core_marts_and_snapshots(graph):
    assert {graph.get(k).group_name for k in graph.get_all_asset_keys()} >= {"s3", "raw", "staging", "core", "marts", "snapshots"}
    assert keys_in_group(graph, "snapshots") == {dg.AssetKey(["snapshots", "snap_movies"]), dg.AssetKey(["snapshots", "snap_tags"])}


def test_every_dbt_data_test_is_an_asset_check_on_its_model(graph, manifest):
    check_keys = {(k.asset_key, k.name) for k in graph.asset_check_keys}
    tests = [n for n in manifest["nodes"].values() if n["resource_type"] == "test" and n.get("attached_node")]
    assert len(tests) >= 20
    for test in tests:
        attached = manifest["nodes"].get(test["attached_node"]) or manifest["sources"].get(test["attached_node"])
        assert (translator.get_asset_key(attached), test["name"]) in check_keys, test["name"]


def test_error_severity_dbt_tests_block_their_downstream(graph):
    specs = [spec for a in defs.assets if isinstance(a, dg.AssetsDefinition) for spec in a.check_specs]
    keys_and_not_nulls = [s for s in specs if s.name.endswith(("_unique", "_not_null"))]
    assert len(keys_and_not_nulls) >= 40 and all(s.blocking for s in keys_and_not_nulls)


def _dbt_nodes(manifest):
    """Every dbt node that is a table or view: models, seeds, snapshots, sources."""
    nodes = [n for n in manifest["nodes"].values() if n["resource_type"] in ("model", "seed", "snapshot")]
    return nodes + list(manifest["sources"].values())


def test_every_column_of_every_dbt_node_is_declared_with_a_description_and_a_data_type(manifest):
    nodes = _dbt_nodes(manifest)
    assert len(nodes) >= 6 + 6 + 9 + 6 + 1 + 2  # sources, staging, core, marts, the seed, snapshots
    for node in nodes:
        assert node["description"].strip(), node["unique_id"]
        assert node["columns"], node["unique_id"]
        for name, column in node["columns"].items():
            assert column["description"].strip() and column.get("data_type"), (node["unique_id"], name)
    # What the warehouse really has is compared in test_dbt_pipeline.py, after a real run.


def test_each_dbt_assets_column_schema_in_dagster_is_its_declared_columns(manifest):
    specs = {spec.key: spec for a in defs.assets if isinstance(a, dg.AssetsDefinition) for spec in a.specs}
    for node in _dbt_nodes(manifest):
        if node["resource_type"] == "source":
            continue  # a source's asset is the raw table's loader, not a dbt asset
        schema = specs[translator.get_asset_key(node)].metadata["dagster/column_schema"]
        assert [(c.name, c.type, c.description) for c in schema.columns] == [
            (name, column["data_type"], column["description"]) for name, column in node["columns"].items()
        ], node["name"]


def test_the_six_marts_have_enforced_contracts(manifest):
    enforced = {n["name"] for n in manifest["nodes"].values()
                if n["resource_type"] == "model" and n["config"].get("contract", {}).get("enforced")}
    assert enforced == set(MARTS)


def test_every_dbt_data_test_has_a_readable_unique_name_and_a_description_dagster_shows(manifest):
    tests = [n for n in manifest["nodes"].values() if n["resource_type"] == "test"]
    names = [t["name"] for t in tests]
    assert len(tests) >= 90 and len(set(names)) == len(names)
    other_nodes = {n["name"] for n in manifest["nodes"].values() if n["resource_type"] != "test"}
    specs = {spec.name: spec for a in defs.assets if isinstance(a, dg.AssetsDefinition) for spec in a.check_specs}
    for test in tests:
        name = test["name"]
        # `netflix-elt`'s subset runs exclude checks by bare name (assets/dbt.py): a name must not
        # also select a model or the whole project
        assert name not in other_nodes and name != "netflix_elt", name
        if test.get("test_metadata"):  # a generic test (a singular one has none)
            assert not name.startswith(DBT_GENERATED_PREFIXES) and "__" in name, name
            assert name.split("__")[0] in {t["name"] for t in _dbt_nodes(manifest)} | {
                f"raw_{s['name']}" for s in manifest["sources"].values()}, name
        else:
            assert name.startswith("assert_"), name
        assert test["description"].strip(), name
        assert test["config"]["meta"].get("description") == test["description"], name
        assert specs[name].description == test["description"], name


def test_ratings_and_its_fact_share_the_monthly_partitions_with_single_run_backfills(graph):
    keys = [dg.AssetKey(["s3", "ratings"]), dg.AssetKey(["raw", "ratings"]), dg.AssetKey(["core", "fct_ratings"])]
    defs_by_key = {k: a for a in defs.assets if isinstance(a, dg.AssetsDefinition) for k in a.keys}
    for key in keys:
        assert graph.get(key).partitions_def == graph.get(keys[0]).partitions_def
        assert defs_by_key[key].backfill_policy == dg.BackfillPolicy.single_run()
    for mart in keys_in_group(graph, "marts"):
        assert graph.get(mart).partitions_def is None
