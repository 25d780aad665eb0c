"""State survives restarts: run history, asset status and sensor cursors live under
``$NETFLIX_ELT_HOME/dagster_home`` (SQLite), so closing the instance (``dagster dev`` stopped)
and opening it again (started again) finds them all."""

from __future__ import annotations

import subprocess
import sys

import dagster as dg
import yaml

from netflix_elt.instance import ensure_dagster_home, instance_yaml, open_instance
from netflix_elt.settings import REPO_ROOT

SENSOR = "new_s3_objects"


def sensor_origin():
    from dagster._core.remote_origin import RegisteredCodeLocationOrigin, RemoteInstigatorOrigin, RemoteRepositoryOrigin

    repo = RemoteRepositoryOrigin(RegisteredCodeLocationOrigin("netflix_elt"), "__repository__")
    return RemoteInstigatorOrigin(repo, SENSOR)


@dg.asset(key=["raw", "movies"])
def movies_stand_in() -> dg.MaterializeResult:
    return dg.MaterializeResult(metadata={"rows": 9_742})


def test_the_project_writes_its_own_instance_config_once_and_keeps_local_edits(local_settings):
    home = ensure_dagster_home(local_settings)
    assert home == local_settings.home / "dagster_home"
    written = yaml.safe_load((home / "dagster.yaml").read_text())
    assert written == yaml.safe_load(instance_yaml(home))
    assert written["event_log_storage"]["config"]["base_dir"] == f"{home}/history/runs"  # inside this home
    (home / "dagster.yaml").write_text(instance_yaml(home) + "# my edit\n")
    ensure_dagster_home(local_settings)
    assert (home / "dagster.yaml").read_text().endswith("# my edit\n")


def test_run_history_asset_status_and_sensor_cursors_survive_closing_and_reopening_the_instance(local_settings):
    from dagster._core.scheduler.instigation import InstigatorState, InstigatorStatus, InstigatorType, SensorInstigatorData

    instance = open_instance(local_settings)
    assert instance.is_persistent
    result = dg.materialize([movies_stand_in], instance=instance)
    cursor = '{"after": "raw/ratings/month=2001-04/ratings.csv", "since": 1.0, "next_since": 2.0, "handled": {}}'
    instance.add_instigator_state(
        InstigatorState(sensor_origin(), InstigatorType.SENSOR, InstigatorStatus.RUNNING, SensorInstigatorData(cursor=cursor))
    )
    instance.dispose()  # "dagster dev" stopped

    # Started again, as another process would: everything is read back from the files.
    script = f"""
import dagster as dg
from pathlib import Path
from netflix_elt.instance import open_instance
from netflix_elt.settings import Settings
from netflix_elt_tests.test_reliability_state import sensor_origin
instance = open_instance(Settings(home=Path({str(local_settings.home)!r})))
run = instance.get_run_by_id({result.run_id!r})
event = instance.get_latest_materialization_event(dg.AssetKey(["raw", "movies"]))
state = instance.get_instigator_state(sensor_origin().get_id(), sensor_origin().get_selector().get_id())
print(run.status.value, event.run_id == run.run_id, event.asset_materialization.metadata["rows"].value,
      state.status.value, state.instigator_data.cursor)
"""
    out = subprocess.run([sys.executable, "-c", script], cwd=str(REPO_ROOT), capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.split(" ", 4) == ["SUCCESS", "True", "9742", "RUNNING", cursor + "\n"]
    assert {"dagster.yaml", "history", "schedules"} <= {p.name for p in local_settings.dagster_home.iterdir()}
