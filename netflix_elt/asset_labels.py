"""What the UI says about each asset besides its data: kinds, owners, tags and freshness.

Decided here, per layer (the asset's group), for every asset at once (``label_assets``, applied
by ``build_definitions`` with Dagster's ``map_asset_specs``), so the asset modules keep to
*what* they build and the labels cannot drift between them.

Kinds follow the target: a raw table or dbt model is ``duckdb`` on the embedded default and
``snowflake`` in production, an object ``s3`` only when the store is S3. dagster-dbt's own
``duckdb`` kind comes from the manifest (parsed against the local target), so it is replaced.

Freshness (Dagster's ``FreshnessPolicy``, evaluated by the daemon's freshness loop, enabled in
the instance's ``dagster.yaml``): MovieLens ratings arrive as one file per month of rating time,
delivered after the month closes. So:

- ``raw/ratings`` is fresh when a load happened since 00:00 UTC on the 1st, checked from 06:00
  UTC on the 2nd (a month's delivery is due by then);
- everything built from the ratings (stg_ratings, the fact and its rollups, dim_users, the marts
  that read them, the dashboard) is fresh when it was rebuilt since the same instant, checked
  two hours later (06:00 -> 08:00): the sensor's run and automation rebuild them within minutes
  of a load;
- the reference tables (movies, tags, links, genome), what is built from them alone, and the
  files in the store have no policy: they change when GroupLens publishes a release, on no
  schedule.

Between those deadlines an asset keeps the state it had; a mart not rebuilt after a load in the
meantime shows as stale through Dagster's own "upstream changed" marker and is rebuilt by the
automation sensor (netflix_elt/automation.py).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Iterable

import dagster as dg

# The team that answers for each layer (Dagster shows owners on the asset page and filters by them).
OWNERS_BY_GROUP = {
    "s3": ["team:data-platform"],
    "raw": ["team:data-platform"],
    "staging": ["team:analytics-engineering"],
    "core": ["team:analytics-engineering"],
    "snapshots": ["team:analytics-engineering"],
    "marts": ["team:analytics"],
    "dashboards": ["team:analytics"],
}

# The layer tag: filter the asset catalogue by it (`tag:layer=mart`).
LAYER_BY_GROUP = {
    "s3": "landing", "raw": "raw", "staging": "staging", "core": "core",
    "snapshots": "history", "marts": "mart", "dashboards": "serving",
}

KIND_TAG_PREFIX = "dagster/kind/"
WAREHOUSE_KINDS = {"duckdb", "snowflake"}
STORE_KINDS = {"s3", "folder"}

# A month's ratings are due by 06:00 UTC on the 2nd; what is built from them two hours later.
RATINGS_DEADLINE_CRON = "0 6 2 * *"
DOWNSTREAM_DEADLINE_CRON = "0 8 2 * *"
MONTH_START_TO_RATINGS_DEADLINE = timedelta(hours=30)  # the 2nd 06:00 -> the 1st 00:00
MONTH_START_TO_DOWNSTREAM_DEADLINE = timedelta(hours=32)

RATINGS_FRESHNESS = dg.FreshnessPolicy.cron(
    deadline_cron=RATINGS_DEADLINE_CRON, lower_bound_delta=MONTH_START_TO_RATINGS_DEADLINE
)
DOWNSTREAM_FRESHNESS = dg.FreshnessPolicy.cron(
    deadline_cron=DOWNSTREAM_DEADLINE_CRON, lower_bound_delta=MONTH_START_TO_DOWNSTREAM_DEADLINE
)
RATINGS_KEY = dg.AssetKey(["raw", "ratings"])


def warehouse_kind(target: str) -> str:
    return "snowflake" if target == "prod" else "duckdb"


def store_kind(store: str) -> str:
    return "s3" if store == "s3" else "folder"


def label_spec(spec: dg.AssetSpec, *, target: str, store: str, built_from_ratings: set[dg.AssetKey]) -> dg.AssetSpec:
    group = spec.group_name or ""
    kinds = set(spec.kinds)
    if group in ("raw", "staging", "core", "snapshots", "marts"):
        kinds = (kinds - WAREHOUSE_KINDS) | {warehouse_kind(target)}
    if group == "s3":
        kinds = (kinds - STORE_KINDS) | {store_kind(store)}
    freshness = spec.freshness_policy
    if spec.key == RATINGS_KEY:
        freshness = RATINGS_FRESHNESS
    elif spec.key in built_from_ratings:
        freshness = DOWNSTREAM_FRESHNESS
    return spec.replace_attributes(
        kinds=kinds,
        owners=list(spec.owners) or OWNERS_BY_GROUP.get(group, []),
        # kinds live among the tags as dagster/kind/<kind>: drop the old ones, `kinds` sets the new
        tags={**{k: v for k, v in spec.tags.items() if not k.startswith(KIND_TAG_PREFIX)},
              "layer": LAYER_BY_GROUP.get(group, group)},
        freshness_policy=freshness,
    )


def label_assets(assets: Iterable, *, target: str, store: str) -> list:
    assets = list(assets)
    built_from_ratings = descendants(RATINGS_KEY, assets)
    return list(dg.map_asset_specs(
        lambda spec: label_spec(spec, target=target, store=store, built_from_ratings=built_from_ratings), assets))


def descendants(root: dg.AssetKey, assets: list) -> set[dg.AssetKey]:
    """Every asset downstream of ``root`` among ``assets`` (specs or definitions)."""
    children: dict[dg.AssetKey, set[dg.AssetKey]] = {}

    def note(spec: dg.AssetSpec) -> dg.AssetSpec:
        for dep in spec.deps:
            children.setdefault(dep.asset_key, set()).add(spec.key)
        return spec

    dg.map_asset_specs(note, assets)
    found, todo = set(), [root]
    while todo:
        for child in children.get(todo.pop(), ()):
            if child not in found:
                found.add(child)
                todo.append(child)
    return found
