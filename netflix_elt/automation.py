"""Declarative automation: what keeps everything downstream of the raw tables fresh.

Loads happen in three ways: ``netflix-elt run`` (everything, one run), the sensor
``new_s3_objects`` (one object's table and everything downstream, one run) and backfills or
hand-made selections from the UI, which may stop anywhere in the graph (raw only, raw + fact,
the fact only). The first two leave nothing stale; the third does. So every asset downstream
of the raw tables (the dbt models, snapshots and seeds, and the dashboard) carries
``KEEP_FRESH``, and the automation sensor below, on by default, evaluates it.

``KEEP_FRESH`` is Dagster's ``eager()`` without its "latest time window only" clause: a
backfill of three months of 2015 must refresh those three months of ``fct_ratings``, not only
the current month. Eager waits while anything upstream (or the asset itself) is in progress and
while a dependency is missing, so a run that already builds the downstream assets (the
sensor's, ``netflix-elt run``'s) leaves nothing for it to do, and a chain of partial runs
settles into one request per asset. Partitioned requests are emitted as a backfill, which the
assets' single-run backfill policy turns into one run for the whole range.

The raw loads carry no condition: a delivery is loaded by the sensor (exactly once per object
version); automation reacting to the same delivery would load it twice.
"""

from __future__ import annotations

import dagster as dg

KEEP_FRESH = dg.AutomationCondition.eager().without(dg.AutomationCondition.in_latest_time_window())

AUTOMATION_SENSOR_NAME = "keep_downstream_fresh"


def build_automation_sensor(
    default_status: dg.DefaultSensorStatus = dg.DefaultSensorStatus.RUNNING,
) -> dg.AutomationConditionSensorDefinition:
    return dg.AutomationConditionSensorDefinition(
        AUTOMATION_SENSOR_NAME,
        target=dg.AssetSelection.all(),
        default_status=default_status,
        minimum_interval_seconds=30,
        description="Rebuilds what is downstream of a load or backfill that stopped short of the marts "
                    "(each asset's KEEP_FRESH condition, netflix_elt/automation.py).",
    )
