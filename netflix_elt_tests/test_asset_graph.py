"""The asset graph as the UI shows it: unbroken lineage, every dbt test a check, one catalogue."""

from __future__ import annotations

import json

import dagster as dg
import pytest

from netflix_elt.assets.dbt import translator
from netflix_elt.dbt_manifest import dbt_project
from netflix_elt.definitions import defs
from netflix_elt.movielens import DATASETS


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


def test_the_dbt_sources_declare_exactly_the_catalogue_columns(manifest):
    by_name = {s["name"]: s for s in manifest["sources"].values()}
    for ds in DATASETS:
        declared = [c.lower() for c in by_name[ds.name]["columns"]]
        assert declared[: len(ds.columns)] == [c.lower() for c in ds.column_names]


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
    assert specs and all(s.blocking for s in specs if s.name.startswith(("unique_", "not_null_")))


def test_ratings_and_its_fact_share_the_monthly_partitions_with_single_run_backfills(graph):
    keys = [dg.AssetKey(["s3", "ratings"]), dg.AssetKey(["raw", "ratings"]), dg.AssetKey(["core", "fct_ratings"])]
    defs_by_key = {k: a for a in defs.assets if isinstance(a, dg.AssetsDefinition) for k in a.keys}
    for key in keys:
        assert graph.get(key).partitions_def == graph.get(keys[0]).partitions_def
        assert defs_by_key[key].backfill_policy == dg.BackfillPolicy.single_run()
    for mart in keys_in_group(graph, "marts"):
        assert graph.get(mart).partitions_def is None
