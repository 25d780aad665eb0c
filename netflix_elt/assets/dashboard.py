"""The ``dashboard`` asset: one self-contained HTML page over the marts.

It reads the marts through the ``warehouse`` resource (``marts_connection``: the DuckDB file,
or Snowflake; a DuckDB connection is held only for the few aggregate queries, so dbt can take
the file's write lock again right after)
and writes ``<DashboardSettings.output_dir>/index.html`` with ``build_dashboard``, which the CLI
and the tests share. The Dagster UI gets the file's path and a markdown preview of each chart.
"""

from datetime import timezone

import dagster as dg

from netflix_elt.automation import KEEP_FRESH
from netflix_elt.dashboard import MART_MODELS, build_dashboard
from netflix_elt.resources.warehouse import Warehouse

DASHBOARD_KEY = dg.AssetKey("dashboard")
MART_KEYS = [dg.AssetKey(["marts", name]) for name in MART_MODELS]  # dbt keys: <schema>/<model>


class DashboardSettings(dg.ConfigurableResource):
    """Where the dashboard is written: ``<NETFLIX_ELT_HOME>/dashboard`` by default wiring."""

    output_dir: str


@dg.asset(
    key=DASHBOARD_KEY,
    pool="duckdb_warehouse",  # a reader still needs the file: DuckDB locks it per process
    group_name="dashboards",
    deps=MART_KEYS,
    kinds={"html", "plotly"},
    description="A self-contained HTML dashboard over the marts (Plotly inlined; opens offline).",
    automation_condition=KEEP_FRESH,  # rebuilt when the marts are (netflix_elt/automation.py)
)
def dashboard(context: dg.AssetExecutionContext, warehouse: Warehouse, dashboard_settings: DashboardSettings) -> dg.MaterializeResult:
    with warehouse.marts_connection() as con:
        result = build_dashboard(con, dashboard_settings.output_dir, source=warehouse.describe())
    h = result.headline
    context.log.info(f"dashboard written to {result.path} ({result.path.stat().st_size:,} bytes)")
    metadata = {
        "path": dg.MetadataValue.path(str(result.path)),
        "url": dg.MetadataValue.url(result.url),
        "size_bytes": result.path.stat().st_size,
        "built_at": dg.MetadataValue.timestamp(result.built_at),
        "ratings": h.ratings,
        "users": h.users,
        "movies": h.movies,
        "rated_movies": h.rated_movies,
    }
    # the warehouse keeps naive UTC timestamps
    if h.first_rating_at:
        metadata["first_rating_at"] = dg.MetadataValue.timestamp(h.first_rating_at.replace(tzinfo=timezone.utc))
    if h.last_rating_at:
        metadata["latest_rating_at"] = dg.MetadataValue.timestamp(h.last_rating_at.replace(tzinfo=timezone.utc))
    previews = result.previews()
    for chart in result.charts:
        metadata[f"preview_{chart.key.replace('-', '_')}"] = dg.MetadataValue.md(
            f"**{chart.title}** — {chart.subtitle}\n\n{previews[chart.key]}"
        )
    return dg.MaterializeResult(metadata=metadata)
