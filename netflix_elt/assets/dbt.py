"""Transform: the dbt project as Dagster assets (dagster-dbt).

Three ``@dbt_assets`` definitions over one manifest, split the way dagster-open-platform
does, and cut so that the graph between them has no cycle (upstream -> fact -> marts):

- ``dbt_models``: seeds, staging views, dims, the SCD2 snapshots and everything else that
  does not read fct_ratings, built with ``dbt build`` so each model's tests run right after
  it (an error-severity failure skips what is downstream);
- ``dbt_fct_ratings``: the staging view of ratings, the incremental fact and its two yearly
  rollups (dbt tag ``ratings_window``, tests scoped to the window), monthly partitioned like
  the ratings they read, with a single-run backfill policy: a backfill of any range is ONE
  ``dbt build`` whose half-open window ``[start, end)`` comes from the run's partition range
  (environment variables of that dbt process alone, see ``ratings_window_env``);
- ``dbt_marts``: dim_users and the marts, which read the rollups (unpartitioned: rebuilt
  once after a load or backfill of any number of months, from tables a fraction of the size
  of fct_ratings).

Every dbt invocation costs start-up time (~0.4 s forked from the warm dbt server,
netflix_elt/warm_dbt; ~3 s cold), so a full run makes three and a new month of ratings two;
see netflix_elt/resources/dbt_cli.py for what else is trimmed per invocation.

Tests that span two of these (``assert_fct_ratings_reconciles_with_staging`` reads
stg_ratings and fct_ratings) must run with the later one: the upstream op uses dbt's
``cautious`` indirect selection (a test runs only when all its parents are selected), the
others the default ``eager``. A subset of a step runs exactly its selected checks
(``_test_selection``).

Every dbt source's asset key is ``raw/<table>``, the key of the raw-table asset that loads it,
so lineage runs unbroken from each S3 file to every mart. dbt tests become asset checks on
their model (source tests on the raw-table assets).
"""

from datetime import datetime
from typing import Any, Mapping

import dagster as dg
from dagster_dbt import DagsterDbtTranslator, DagsterDbtTranslatorSettings, DbtCliResource, dbt_assets

from netflix_elt.assets.dbt_events import asset_events
from netflix_elt.automation import KEEP_FRESH
from netflix_elt.dbt_manifest import dbt_project
from netflix_elt.partitions import months_in_window, ratings_monthly
from netflix_elt.resources.dbt_cli import LeanDbtCliResource, keep_partial_parse
# The manifest is built by `netflix-elt prepare` (make setup runs it when a file of the dbt
# project changed), never on import: loading the code location parses nothing.

# stg_ratings, fct_ratings and the yearly rollups: the partitioned step. Everything
# downstream of them (``+``, their tests included) is dbt_marts', everything else dbt_models'.
WINDOW_TAG = "ratings_window"
WINDOW_SELECTOR = f"tag:{WINDOW_TAG}"


class NetflixDbtTranslator(DagsterDbtTranslator):
    """Groups follow the project's folders: staging, core, marts; snapshots apart.

    Every dbt node carries ``KEEP_FRESH`` (netflix_elt/automation.py): after a backfill or a
    hand-made run that stopped short of the marts, the automation sensor rebuilds what is
    stale downstream, partitions of the fact included.
    """

    def get_automation_condition(self, dbt_resource_props: Mapping[str, Any]) -> dg.AutomationCondition | None:
        return KEEP_FRESH

    def get_asset_spec(self, manifest: Mapping[str, Any], unique_id: str, project) -> dg.AssetSpec:
        """A model that reads a view of the ratings window also depends on what the view reads.

        ``stg_ratings`` is a view: ``fct_ratings`` reads ``raw.ratings`` through it, so the edge
        ``raw/ratings -> fct_ratings`` is true of the data. Dagster needs it spelled out: an
        asset backfill of a selection follows only edges between *selected* assets from the
        selection's roots, so a backfill of ``raw/ratings`` + ``core/fct_ratings`` (without the
        view) would otherwise target the raw table alone and silently leave the fact out.
        """
        spec = super().get_asset_spec(manifest, unique_id, project)
        extra = []
        for parent_id in self.get_resource_props(manifest, unique_id).get("depends_on", {}).get("nodes", []):
            parent = manifest["nodes"].get(parent_id, {})
            if parent.get("config", {}).get("materialized") == "view" and WINDOW_TAG in parent.get("tags", []):
                extra += [self.get_asset_spec(manifest, grandparent, project).key
                          for grandparent in parent["depends_on"]["nodes"]]
        known = {dep.asset_key for dep in spec.deps}
        extra = [key for key in dict.fromkeys(extra) if key not in known]
        return spec.merge_attributes(deps=extra) if extra else spec

    def get_asset_check_spec(self, asset_spec: dg.AssetSpec, manifest: Mapping[str, Any], unique_id: str,
                             project) -> dg.AssetCheckSpec | None:
        """dagster-dbt reads a check's description from the test's ``meta``; dbt (>= 1.9) gives
        data tests a ``description`` of their own, which is where this project writes it."""
        spec = super().get_asset_check_spec(asset_spec, manifest, unique_id, project)
        test = manifest["nodes"].get(unique_id, {})
        if spec is None or spec.description or not test.get("description"):
            return spec
        return dg.AssetCheckSpec(
            name=spec.name, asset=spec.asset_key, description=test["description"],
            additional_deps=[dep.asset_key for dep in spec.additional_deps], metadata=spec.metadata,
            blocking=spec.blocking, automation_condition=spec.automation_condition,
        )

    def get_group_name(self, dbt_resource_props: Mapping[str, Any]) -> str | None:
        resource_type = dbt_resource_props["resource_type"]
        if resource_type == "snapshot":
            return "snapshots"
        if resource_type == "seed":
            return "staging"  # static reference data, read by staging and core models
        if resource_type == "source":
            return "raw"
        fqn = dbt_resource_props.get("fqn", [])
        return fqn[1] if len(fqn) > 2 else "dbt"


translator = NetflixDbtTranslator(
    settings=DagsterDbtTranslatorSettings(enable_asset_checks=True, enable_source_tests_as_checks=True)
)


def ratings_window_env(start: datetime, end: datetime) -> dict[str, str]:
    """fct_ratings' half-open window [start, end) as naive UTC timestamps, in the environment
    variables dbt_project/macros/ratings_window.sql reads (env vars, not --vars: a new --vars
    value makes dbt re-parse the whole project on every monthly run)."""
    fmt = "%Y-%m-%d %H:%M:%S"
    return {"NETFLIX_ELT_RATINGS_WINDOW_START": start.strftime(fmt), "NETFLIX_ELT_RATINGS_WINDOW_END": end.strftime(fmt)}


@dbt_assets(
    manifest=dbt_project.manifest_path,
    project=dbt_project,
    dagster_dbt_translator=translator,
    exclude=f"{WINDOW_SELECTOR}+",
    name="dbt_models",
    pool="duckdb_warehouse",  # one writer at a time (netflix_elt/instance.py)
)
def dbt_models(context: dg.AssetExecutionContext, dbt: DbtCliResource):
    yield from _build(context, dbt, _test_selection(context, ["--indirect-selection", "cautious"]))


# dbt unit tests check the models' logic against fixed inputs, not the data: as dbt advises,
# they run in development and CI (netflix_elt_tests/test_dbt_pipeline.py), not on every load.
NO_UNIT_TESTS = ["--exclude-resource-type", "unit_test"]


def _build(context: dg.AssetExecutionContext, dbt: LeanDbtCliResource, args: list[str], env: Mapping[str, str] | None = None):
    invocation = dbt.cli(["build", *NO_UNIT_TESTS, *args], context=context, env=env)
    # stream() plus row counts, descriptions, lineage; dbt stopped if silent too long (dbt_events.py)
    yield from asset_events(invocation, idle_timeout_s=dbt.idle_timeout_s)
    keep_partial_parse(invocation, dbt_project.project_dir)


def _test_selection(context: dg.AssetExecutionContext, whole_step: list[str]) -> list[str]:
    """Which dbt tests run with the models, so that they are exactly the selected checks.

    The whole step (``netflix-elt run``, a sensor run, a backfill of the whole step) keeps
    ``whole_step``: an indirect-selection mode that leaves a test spanning two steps to the later
    one. A subset (the UI's "Materialize selected", a backfill of some assets, automation) is
    selected by dagster-dbt, model by model, with dbt's default ``eager`` tests: every test on a
    selected model runs, a relationship to a model of another step included (cautious or
    buildable would drop it, and Dagster would report the check as never evaluated). Eager also
    picks tests that belong to a model left out (the rollups' reconcile test when only
    fct_ratings is rebuilt, which would fail against rollups not rebuilt yet; a mart's test when
    only the seed it reads is), so every dbt check that was not selected is excluded by name (a
    check's name is its dbt test's).
    """
    if not context.is_subset:
        return whole_step
    selected = {key.name for key in context.selected_asset_check_keys}
    # Every dbt test is some step's check: eager also picks tests of the other steps' models that
    # touch a selected one (a mart's relationship to the genres seed), so all are candidates.
    everything = {key.name for assets_def in DBT_ASSETS for key in assets_def.check_keys}
    left_out = sorted(everything - selected)
    return ["--exclude", " ".join(left_out)] if left_out else []


HEAVY_WINDOW_MONTHS = 12  # above this, the partitioned step runs one dbt model at a time on DuckDB


class FctRatingsConfig(dg.Config):
    """Launchpad config of the fct_ratings step: `full_refresh: true` rebuilds all history."""

    full_refresh: bool = False


@dbt_assets(
    manifest=dbt_project.manifest_path,
    project=dbt_project,
    dagster_dbt_translator=translator,
    select=WINDOW_SELECTOR,
    partitions_def=ratings_monthly,
    backfill_policy=dg.BackfillPolicy.single_run(),
    name="dbt_fct_ratings",
    pool="duckdb_warehouse",  # one writer at a time (netflix_elt/instance.py)
)
def dbt_fct_ratings(context: dg.AssetExecutionContext, dbt: DbtCliResource, config: FctRatingsConfig):
    window = context.partition_time_window
    env = ratings_window_env(window.start, window.end)
    context.log.info(f"fct_ratings window [{env['NETFLIX_ELT_RATINGS_WINDOW_START']}, {env['NETFLIX_ELT_RATINGS_WINDOW_END']})")
    # buildable: a test runs when all its parents are selected or upstream of the selection,
    # so the rollups' reconcile test waits for the rollups when only fct_ratings is rebuilt.
    args = _test_selection(context, ["--indirect-selection", "buildable"])
    if dbt.target == "local" and len(months_in_window(window.start, window.end)) > HEAVY_WINDOW_MONTHS:
        # A long window is a few heavy models (25M ratings into two rollups at once on a full
        # run): DuckDB already spreads each query over every core, and two at a time only
        # contend (ml-25m, 2 cores: 23.8 s with two dbt threads, 21.9 s with one). A month's
        # window is light work and many small tests, which two threads run sooner (1.45 s -> 1.25 s).
        args += ["--threads", "1"]
    if config.full_refresh:
        args.append("--full-refresh")  # rebuild all history, whatever the window
    yield from _build(context, dbt, args, env)


@dbt_assets(
    manifest=dbt_project.manifest_path,
    project=dbt_project,
    dagster_dbt_translator=translator,
    select=f"{WINDOW_SELECTOR}+",
    exclude=WINDOW_SELECTOR,
    name="dbt_marts",
    pool="duckdb_warehouse",  # one writer at a time (netflix_elt/instance.py)
)
def dbt_marts(context: dg.AssetExecutionContext, dbt: DbtCliResource):
    yield from _build(context, dbt, _test_selection(context, []))


DBT_ASSETS = [dbt_models, dbt_fct_ratings, dbt_marts]
