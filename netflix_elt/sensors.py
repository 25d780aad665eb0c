"""A sensor that loads new S3 objects as they arrive.

Each tick lists the store's ``raw/`` prefix in key order, resuming *after* the key where the
previous tick stopped, for at most ``max_objects_per_tick`` objects. When a listing reaches
the end, the next tick starts a new sweep from the beginning. So a bucket with 100,000
objects costs each tick a bounded amount of listing, and any new object is seen within one
sweep wherever its key sorts.

What counts as new: an object last modified at or after ``since`` (the start of the previous
sweep, minus a clock-skew margin) whose (key, ETag) is not in ``handled``. ``handled`` only
keeps entries young enough to be seen again, so the cursor stays small. Objects delivered
before the sensor was first switched on are the job of a regular run or a backfill, not of
hundreds of sensor runs: the first sweep records the objects it finds from before its first
tick as handled without a run (``baseline_until``: the first tick's time, in whole seconds as
S3 reports it), so the margin that later sweeps look back cannot take what ``make run`` wrote a
moment before for deliveries. Objects written in the same second as the first tick count as
deliveries; one delivered just after it, by a store whose clock lags the sensor's, is left to a
run or a backfill.

For each new object version the sensor records a materialization of its S3-file asset (the
delivery happened outside Dagster) and requests ONE run (run key ``<key>@<etag>``) of its
raw-table load and everything downstream (see run_scope): for ratings, that month's
partition.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass, field

import dagster as dg

from netflix_elt.layout import classify
from netflix_elt.movielens import DATASETS, RAW_PREFIX
from netflix_elt.partitions import ratings_monthly
from netflix_elt.resources.object_store import ObjectStore, StoredObject

CLOCK_SKEW_MARGIN_S = 60.0
MAX_OBJECTS_PER_TICK = 10_000
PAGE_SIZE = 1_000


@dataclass
class SensorCursor:
    after: str = ""  # last key listed in the current sweep ("" = start of a sweep)
    since: float = 0.0  # objects modified at/after this are candidates in this sweep
    next_since: float = 0.0  # `since` for the next sweep: when this sweep started, minus margin
    handled: dict[str, list] = field(default_factory=dict)  # key -> [etag, last_modified]
    # During the first sweep: objects last modified before this were in the store when the
    # sensor was switched on (handled without a run). 0 once the first sweep is over.
    baseline_until: float = 0.0

    def dumps(self) -> str:
        return json.dumps({"after": self.after, "since": self.since, "next_since": self.next_since, "handled": self.handled,
                           "baseline_until": self.baseline_until})

    @classmethod
    def loads(cls, text: str | None, now: float) -> "SensorCursor":
        if not text:
            start = now - CLOCK_SKEW_MARGIN_S
            # Whole seconds: S3 reports times truncated to the second, so an object written after
            # this tick never looks older than it.
            return cls(since=start, next_since=start, baseline_until=float(math.floor(now)))
        data = json.loads(text)
        return cls(data["after"], data["since"], data["next_since"], data["handled"], data.get("baseline_until", 0.0))


@dataclass
class TickPlan:
    new_objects: list[StoredObject]
    skipped: list[tuple[str, str]]  # (key, why)
    cursor: SensorCursor
    listed: int
    sweep_finished: bool


def plan_tick(store: ObjectStore, cursor: SensorCursor, now: float, max_objects: int = MAX_OBJECTS_PER_TICK,
              page_size: int = PAGE_SIZE) -> TickPlan:
    """Pure planning over one bounded slice of the listing: what is new, and the next cursor."""
    new, skipped, listed = [], [], 0
    months = set(ratings_monthly.get_partition_keys())  # once per tick: asking per object is slow
    last_key = cursor.after
    finished = True
    for obj in store.list_objects(RAW_PREFIX, start_after=cursor.after or None, page_size=page_size):
        listed += 1
        last_key = obj.key
        slot = classify(obj.key, obj.size)
        if slot is None:
            skipped.append((obj.key, "not a delivery under the raw/ layout"))
        elif obj.size == 0:
            skipped.append((obj.key, "zero-byte object"))
        elif slot.month is not None and slot.month not in months:
            skipped.append((obj.key, f"month {slot.month} is outside the ratings partitions"))
        elif obj.last_modified >= cursor.since and cursor.handled.get(obj.key, [None])[0] != obj.etag:
            cursor.handled[obj.key] = [obj.etag, obj.last_modified]
            if obj.last_modified < cursor.baseline_until:
                skipped.append((obj.key, "in the store before the sensor was switched on"))
            else:
                new.append(obj)
        if listed >= max_objects:
            finished = False
            break
    if finished:  # reached the end: the next tick starts a new sweep
        cursor.after = ""
        cursor.baseline_until = 0.0
        cursor.since, cursor.next_since = cursor.next_since, now - CLOCK_SKEW_MARGIN_S
        # Keep only entries that the next sweep could see again (modified since `since`).
        cursor.handled = {k: v for k, v in cursor.handled.items() if v[1] >= cursor.since}
    else:
        cursor.after = last_key
    return TickPlan(new, skipped, cursor, listed, finished)


def run_scope(raw_key: dg.AssetKey, asset_graph) -> tuple[list[dg.AssetKey], list[dg.AssetCheckKey]]:
    """The assets a new object of ``raw_key`` rebuilds (it and everything downstream), and the
    checks that run with them: the checks on those assets that the run's own steps execute.
    A check executed by a step with nothing else to do in the run stays out, so it cannot
    start that step: a dbt source test on a raw table runs in dbt_models, which a month of
    ratings does not otherwise need (raw.ratings has no source tests; one added later would
    cost a dbt start and a scan of all ratings per month). Full runs and backfills run them."""
    keys = dg.AssetSelection.keys(raw_key).downstream().resolve(asset_graph)
    checks = set()
    for assets_def in asset_graph.assets_defs:
        if assets_def.keys and not assets_def.keys & keys:
            continue  # its step is not part of the run
        checks |= {ck for ck in assets_def.check_keys if ck.asset_key in keys}
    by_name = lambda k: k.to_user_string()  # noqa: E731
    return sorted(keys, key=by_name), sorted(checks, key=by_name)


def selection_of(request: dg.RunRequest) -> dg.AssetSelection:
    """A run request's assets and checks as one selection, for ``dg.materialize`` (the
    daemon reads both from the request itself)."""
    return dg.AssetSelection.assets(*request.asset_selection).without_checks() | dg.AssetSelection.checks(
        *(request.asset_check_keys or [])
    )


def build_new_objects_sensor(
    max_objects_per_tick: int = MAX_OBJECTS_PER_TICK,
    page_size: int = PAGE_SIZE,
    default_status: dg.DefaultSensorStatus = dg.DefaultSensorStatus.STOPPED,
) -> dg.SensorDefinition:
    @dg.sensor(
        name="new_s3_objects",
        # What its run requests may select: every raw table and everything downstream. Without a
        # target the daemon refuses the requests (a unit test calling the function would not).
        target=dg.AssetSelection.assets(*(dg.AssetKey(["raw", ds.name]) for ds in DATASETS)).downstream(),
        minimum_interval_seconds=30,
        default_status=default_status,
        description="Loads each new or changed object under raw/ (and what is downstream) as it arrives.",
    )
    def new_s3_objects(context: dg.SensorEvaluationContext, object_store: ObjectStore) -> dg.SensorResult:
        now = time.time()
        cursor = SensorCursor.loads(context.cursor, now)
        plan = plan_tick(object_store, cursor, now, max_objects_per_tick, page_size)
        for key, why in plan.skipped[:20]:  # stray keys are logged, never fatal; a few are enough
            context.log.info(f"skipped {key}: {why}")
        if len(plan.skipped) > 20:
            context.log.info(f"... and {len(plan.skipped) - 20} more skipped keys")
        asset_graph = context.repository_def.asset_graph
        scopes: dict[dg.AssetKey, tuple] = {}  # resolved once per dataset per tick
        requests, events = [], []
        for obj in plan.new_objects:
            slot = classify(obj.key, obj.size)
            raw_key = dg.AssetKey(["raw", slot.dataset.name])
            if raw_key not in scopes:
                scopes[raw_key] = run_scope(raw_key, asset_graph)
            scope_keys, scope_checks = scopes[raw_key]
            events.append(
                dg.AssetMaterialization(
                    asset_key=dg.AssetKey(["s3", slot.dataset.name]),
                    partition=slot.month,
                    description=f"delivered: {obj.key}",
                    metadata={"key": obj.key, "etag": obj.etag, "bytes": dg.MetadataValue.int(obj.size),
                              "location": object_store.describe(obj.key), "seen_by": "sensor new_s3_objects"},
                )
            )
            requests.append(
                dg.RunRequest(
                    run_key=f"{obj.key}@{obj.etag}",
                    asset_selection=scope_keys,
                    asset_check_keys=scope_checks,
                    partition_key=slot.month,
                    tags={"netflix_elt/object": obj.key[:200], "netflix_elt/etag": obj.etag[:64]},
                )
            )
        context.log.info(
            f"listed {plan.listed} objects after {context.cursor and json.loads(context.cursor)['after']!r}: "
            f"{len(requests)} new, {len(plan.skipped)} skipped{', sweep finished' if plan.sweep_finished else ''}"
        )
        return dg.SensorResult(run_requests=requests, asset_events=events, cursor=plan.cursor.dumps())

    return new_s3_objects
