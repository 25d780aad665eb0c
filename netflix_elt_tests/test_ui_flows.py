"""The pipeline driven the way a user drives it: ``netflix-elt dev`` (webserver, daemon, code
server) over a home built by ``netflix-elt run``, with the UI's own GraphQL calls
(graphql_api.py) and, for the run page, headless Chromium on the UI itself.

One stack serves the whole module, so the tests share its history; each looks only at the
runs, ticks and backfills it caused. The warehouse file is read (read-only) only while no run
is active: DuckDB allows one process while another writes.
"""

from __future__ import annotations

import time
from datetime import datetime, timezone

import duckdb
import pytest

from netflix_elt_tests import graphql_api as ui
from netflix_elt_tests.dagster_stack import built_home as fresh_built_home, netflix_elt, running_stack

pytestmark = pytest.mark.slow

SENSOR = "new_s3_objects"
AUTOMATION_SENSOR = "keep_downstream_fresh"
DELIVERED_MONTH = "2026-11"
DELIVERED_ROWS = 200
BACKFILL_MONTHS = ["2015-01", "2015-02", "2015-03"]
RATINGS_CHAIN = [  # every asset partitioned by month, s3 file to dbt facts
    "s3/ratings", "raw/ratings", "staging/stg_ratings",
    "core/fct_ratings", "core/fct_movie_ratings_yearly", "core/fct_user_ratings_yearly",
]


@pytest.fixture(scope="module")
def built_home(tmp_path_factory, warm_dbt_servers):
    return fresh_built_home(tmp_path_factory, "ui-flows")


@pytest.fixture(scope="module")
def stack(built_home):
    with running_stack(built_home) as stack:
        yield stack


def warehouse_rows(home, sql: str):
    con = duckdb.connect(str(home / "warehouse.duckdb"), read_only=True)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


def check_results(stack, run_id: str) -> dict[str, dict]:
    """Every check the run selected -> its execution in that run (None if it has none)."""
    out = {}
    for handle in ui.run(stack, run_id)["assetCheckSelection"]:
        asset, name = handle.rsplit(":", 1)
        executions = [e for e in ui.asset_check_executions(stack, asset, name, limit=50) if e["runId"] == run_id]
        out[handle] = executions[0] if executions else None
    return out


def unevaluated(results: dict[str, dict]) -> dict[str, str]:
    """Checks without a passing evaluation, with what the UI shows for them."""
    bad = {}
    for handle, execution in results.items():
        if execution is None:
            bad[handle] = "no execution"
        elif execution["status"] != "SUCCEEDED" or not (execution["evaluation"] or {}).get("success"):
            bad[handle] = f"{execution['status']}: {(execution['evaluation'] or {}).get('description')}"
    return bad


def did_not_yield(stack, run_id: str) -> list[str]:
    return [e["message"] for e in ui.run_events(stack, run_id) if "did not yield" in (e.get("message") or "")]


def test_materializing_a_selection_from_the_ui_runs_to_success_with_its_checks_evaluated(stack):
    selection = ["raw/movies", "staging/stg_movies"]
    expected_checks = {f"{'/'.join(c['assetKey']['path'])}:{c['name']}" for c in ui.checks_of_assets(stack, selection)}
    assert "raw/movies:rows_reconcile" in expected_checks

    run_id = ui.launch_assets(stack, selection)
    assert ui.wait_run(stack, run_id, timeout=300) == "SUCCESS"

    run = ui.run(stack, run_id)
    assert run["tags"].get("dagster/from_ui") == "true"
    assert set(run["assetSelection"]) == set(selection)
    assert set(run["assetCheckSelection"]) == expected_checks
    steps = ui.run_step_stats(stack, run_id)
    assert steps and all(s["status"] == "SUCCESS" for s in steps.values()), steps
    for asset in selection:
        assert any(m["runId"] == run_id for m in ui.latest_materializations(stack, asset, limit=5)), asset
    results = check_results(stack, run_id)
    assert not unevaluated(results), unevaluated(results)
    reconcile = results["raw/movies:rows_reconcile"]["evaluation"]["metadata"]
    assert reconcile["rows_in_files"] == reconcile["rows_loaded"] + reconcile["rows_rejected"], reconcile
    assert reconcile["table_rows"] == reconcile["rows_loaded"] == 9742, reconcile  # the shipped movies.csv
    assert not did_not_yield(stack, run_id)


def test_the_sensor_loads_a_month_delivered_after_it_was_switched_on_exactly_once(stack):
    before = {r["runId"] for r in ui.runs(stack, limit=200)}
    state = ui.start_sensor(stack, SENSOR)
    assert state["sensorState"]["status"] == "RUNNING"
    try:
        # Its first tick starts the cursor ("now"): what was there before is a backfill's job.
        ticks = ui.wait_ticks(stack, SENSOR, lambda ts: any(t["status"] != "STARTED" for t in ts), 120, "first tick")
        assert not any(t["status"] == "FAILURE" for t in ticks), "\n\n".join(t["error"] or "" for t in ticks)
        first_tick_ids = {t["tickId"] for t in ticks}

        delivered = netflix_elt(stack.home, "deliver", "ratings", "--month", DELIVERED_MONTH,
                                "--rows", str(DELIVERED_ROWS), timeout=120)
        assert f"month={DELIVERED_MONTH}" in delivered, delivered

        ticks = ui.wait_ticks(stack, SENSOR, lambda ts: any(t["runIds"] or t["status"] == "FAILURE" for t in ts
                                                   if t["tickId"] not in first_tick_ids), 240, "tick requesting a run")
        new_ticks = [t for t in ticks if t["tickId"] not in first_tick_ids]
        failures = [t["error"] for t in new_ticks if t["status"] == "FAILURE"]
        assert not failures, "sensor tick failed:\n" + "\n\n".join(failures)
        requested = [run_id for t in new_ticks for run_id in t["runIds"]]
        assert len(requested) == 1, new_ticks
        run_id = requested[0]
        assert ui.wait_run(stack, run_id, timeout=300) == "SUCCESS"
        run = ui.run(stack, run_id)
        assert run["tags"].get("dagster/partition") == DELIVERED_MONTH, run["tags"]
        assert "raw/ratings" in run["assetSelection"], run["assetSelection"]
        results = check_results(stack, run_id)
        assert not unevaluated(results), unevaluated(results)

        # Later ticks (>= 30 s apart) request nothing more: the month is handled.
        run_tick = max(int(t["tickId"]) for t in new_ticks if t["runIds"])
        ticks = ui.wait_ticks(stack, SENSOR, lambda ts: sum(1 for t in ts if int(t["tickId"]) > run_tick
                                                  and t["status"] != "STARTED") >= 2, 150, "two later ticks")
        later = [t for t in ticks if int(t["tickId"]) > run_tick and t["status"] != "STARTED"]
        assert all(not t["runIds"] and t["status"] != "FAILURE" for t in later), later
    finally:
        ui.stop_sensor(stack, SENSOR)

    # Automation may launch runs meanwhile (what earlier tests left stale); the sensor launched one.
    sensor_runs = [r for r in ui.runs(stack, limit=200)
                   if r["runId"] not in before and r["tags"].get("dagster/sensor_name") == SENSOR]
    assert [r["runId"] for r in sensor_runs] == [run_id], [(r["runId"], r["tags"]) for r in sensor_runs]

    ui.wait_no_active_runs(stack, timeout=300)
    start, end = (int(d.timestamp()) for d in (datetime(2026, 11, 1, tzinfo=timezone.utc),
                                                 datetime(2026, 12, 1, tzinfo=timezone.utc)))
    [(rows, objects)] = warehouse_rows(
        stack.home,
        f"select count(*), count(distinct _source_object) from raw.ratings where timestamp >= {start} and timestamp < {end}",
    )
    assert (rows, objects) == (DELIVERED_ROWS, 1)


@pytest.mark.parametrize(
    "selection",
    [
        pytest.param(["raw/ratings"], id="raw_ratings"),
        pytest.param(["raw/ratings", "core/fct_ratings"], id="raw_ratings_and_fct_ratings"),
        pytest.param(["core/fct_ratings"], id="fct_ratings"),
        pytest.param(RATINGS_CHAIN, id="whole_partitioned_chain"),
    ],
)
def test_a_backfill_of_three_months_from_the_ui_materializes_every_selected_asset_for_each_month(stack, selection):
    backfill_id = ui.launch_backfill(stack, selection, BACKFILL_MONTHS)
    status = ui.wait_backfill(stack, backfill_id, timeout=600)
    run_ids = [r["runId"] for r in status["runs"]]
    failed_runs = {r["runId"]: ui.failure_messages(stack, r["runId"]) for r in status["runs"] if r["status"] != "SUCCESS"}
    assert not failed_runs, failed_runs
    assert status["status"] in ("COMPLETED_SUCCESS", "COMPLETED"), (status["status"], status["error"])
    assert run_ids, status

    missing = ui.unmaterialized(stack, selection, BACKFILL_MONTHS, run_ids)
    assert not missing, f"no materialization by backfill {backfill_id} (runs {run_ids}) of: {missing}; " \
                        f"backfill per asset: {status['assets']}"

    bad_checks, not_yielded = {}, {}
    for run_id in run_ids:
        bad_checks.update({f"{run_id[:8]} {k}": v for k, v in unevaluated(check_results(stack, run_id)).items()})
        if did_not_yield(stack, run_id):
            not_yielded[run_id] = did_not_yield(stack, run_id)
    assert not bad_checks, bad_checks
    assert not not_yielded, not_yielded


PREVIEW_QUERY = """
query BackfillPreview($params: AssetBackfillPreviewParams!) {
  assetBackfillPreview(params: $params) { assetKey { path } partitions { ranges { start end } } }
}
"""


def test_the_backfill_dialog_previews_the_fact_when_raw_and_fact_are_selected(stack):
    """What the dialog lists before "Launch backfill": each selected asset with its months."""
    params = {"assetSelection": [ui.key_input(k) for k in ("raw/ratings", "core/fct_ratings")],
              "partitionNames": BACKFILL_MONTHS}
    preview = stack.graphql(PREVIEW_QUERY, {"params": params})["assetBackfillPreview"]
    ranges = {ui.key_string(p["assetKey"]["path"]): p["partitions"]["ranges"] for p in preview}
    expected = [{"start": BACKFILL_MONTHS[0], "end": BACKFILL_MONTHS[-1]}]
    assert ranges == {"raw/ratings": expected, "core/fct_ratings": expected}, ranges


def test_automation_rebuilds_the_fact_months_and_everything_downstream_after_a_raw_only_backfill(stack):
    months = ["2016-04", "2016-05"]
    sensor = ui.sensor(stack, AUTOMATION_SENSOR)
    assert sensor["sensorState"]["status"] == "RUNNING", sensor  # on by default

    backfill_id = ui.launch_backfill(stack, ["raw/ratings"], months)
    status = ui.wait_backfill(stack, backfill_id, timeout=600)
    assert status["status"] in ("COMPLETED_SUCCESS", "COMPLETED"), status
    backfill_runs = {r["runId"] for r in status["runs"]}
    loaded_at = max(float(m["timestamp"]) for m in ui.latest_materializations(stack, "raw/ratings", partitions=months)
                    if m["runId"] in backfill_runs)

    def fresh(asset: str, partitions=None) -> bool:
        records = ui.latest_materializations(stack, asset, partitions=partitions, limit=10)
        done = {m.get("partition") for m in records if float(m["timestamp"]) > loaded_at}
        return set(partitions or [None]) <= done

    downstream = {"core/fct_ratings": months, "core/fct_movie_ratings_yearly": months, "core/dim_users": None,
                  "marts/mart_movie_analysis": None, "dashboard": None}
    deadline = time.monotonic() + 420
    stale = dict(downstream)
    while stale and time.monotonic() < deadline:
        stale = {a: p for a, p in stale.items() if not fresh(a, p)}
        time.sleep(5)
    later_runs = [(r["runId"][:8], r["status"], r["tags"]) for r in ui.runs(stack, limit=10) if r["runId"] not in backfill_runs]
    assert not stale, f"not rebuilt after the raw backfill within 7 min: {sorted(stale)}; latest runs: {later_runs}"


def test_a_failed_blocking_check_in_a_ui_run_stops_the_models_downstream_of_its_table(stack):
    ui.wait_no_active_runs(stack, timeout=600)
    con = duckdb.connect(str(stack.home / "warehouse.duckdb"))
    try:  # a row lost behind the loader's back
        con.execute("delete from raw.tags where rowid = (select min(rowid) from raw.tags)")
    finally:
        con.close()
    try:
        run_id = ui.launch_assets(stack, ["raw/tags", "staging/stg_tags"])
        assert ui.wait_run(stack, run_id, timeout=300, raise_on_failure=False) == "FAILURE"
        steps = ui.run_step_stats(stack, run_id)
        assert steps["raw__tags"]["status"] == "FAILURE", steps
        assert "dbt_models" not in steps or steps["dbt_models"]["status"] == "SKIPPED", steps
        assert not any(m["runId"] == run_id for m in ui.latest_materializations(stack, "staging/stg_tags", limit=5))
        [execution] = [e for e in ui.asset_check_executions(stack, "raw/tags", "rows_reconcile", limit=5) if e["runId"] == run_id]
        evaluation = execution["evaluation"]
        assert not evaluation["success"] and "the ledger says" in evaluation["description"], evaluation
        assert evaluation["metadata"]["table_rows"] == evaluation["metadata"]["rows_loaded"] - 1, evaluation
    finally:  # put the row back: forget the table's load (rows, rejects and ledger together), load again
        ui.wait_no_active_runs(stack, timeout=600)
        con = duckdb.connect(str(stack.home / "warehouse.duckdb"))
        try:
            con.execute("begin")
            con.execute("delete from raw.tags")
            con.execute("delete from raw._load_rejects where dataset = 'tags'")
            con.execute("delete from raw._load_ledger where dataset = 'tags'")
            con.execute("commit")
        finally:
            con.close()
        assert ui.wait_run(stack, ui.launch_assets(stack, ["raw/tags"]), timeout=300) == "SUCCESS"


def test_the_run_page_shows_a_run_finish_live_without_a_reload(stack, tmp_path):
    from netflix_elt_tests.playwright_browser import dismiss_dagster_dialogs, open_page, screenshot

    run_id = ui.launch_assets(stack, ["raw/movies", "staging/stg_movies", "core/dim_movies"])
    with open_page(f"{stack.url}/runs/{run_id}") as page:
        page.get_by_text(run_id[:8]).first.wait_for(timeout=60_000)  # the run's page has rendered
        dismiss_dagster_dialogs(page)
        status_when_opened = ui.run(stack, run_id)["status"]
        assert status_when_opened not in ui.RUN_FINISHED, \
            f"the run was already {status_when_opened} when its page opened; the test needs a longer run"
        try:
            assert ui.wait_run(stack, run_id, timeout=300) == "SUCCESS"
            # No reload: the page's own subscription must bring the end of the run.
            page.get_by_text("RUN_SUCCESS", exact=True).first.wait_for(timeout=120_000)
        finally:
            shot = screenshot(page, tmp_path / f"run-page-{run_id[:8]}.png")
        assert shot.stat().st_size > 10_000
        body = page.inner_text("body")
        assert "Errored (0)" in body, body[:2000]
