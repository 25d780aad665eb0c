"""The code location: one ``Definitions`` object for ``dagster dev`` and the CLI.

Runs use the in-process executor: DuckDB allows one writing process per database file, and
a run's steps are sequential loads and dbt invocations anyway, so separate step processes
would only add start-up time and lock contention.
"""

from __future__ import annotations

import dagster as dg

from netflix_elt.asset_labels import label_assets
from netflix_elt.assets.dashboard import dashboard
from netflix_elt.automation import build_automation_sensor
from netflix_elt.assets.dbt import DBT_ASSETS
from netflix_elt.assets.extract import build_extract_assets
from netflix_elt.assets.load import build_load_assets
from netflix_elt.resources.factory import build_resources
from netflix_elt.sensors import build_new_objects_sensor
from netflix_elt.settings import Settings


FULL_PIPELINE_JOB = "full_pipeline"

full_pipeline = dg.define_asset_job(
    FULL_PIPELINE_JOB,
    selection=dg.AssetSelection.all(),
    description="Every asset and check: what `make run` (netflix-elt run) launches, with all ratings months "
                "as one partition range. Its runs are named for it in the run history.",
)


def build_definitions(settings: Settings | None = None) -> dg.Definitions:
    settings = settings or Settings.from_env()
    return dg.Definitions(
        assets=label_assets([*build_extract_assets(), *build_load_assets(), *DBT_ASSETS, dashboard],
                            target=settings.target, store=settings.store),
        jobs=[full_pipeline],
        sensors=[build_new_objects_sensor(), build_automation_sensor()],
        resources=build_resources(settings),
        executor=dg.in_process_executor,
    )


defs = build_definitions()
