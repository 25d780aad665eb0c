"""The trimmed dbt resource: lean outputs, and parses are handed on. (The private dagster-dbt
hooks it inherits are checked in test_private_hooks.py.)"""

import json
from pathlib import Path

from netflix_elt.dbt_manifest import dbt_executable
from netflix_elt.resources.dbt_cli import PARTIAL_PARSE_FILE, LeanDbtCliResource, keep_partial_parse
from netflix_elt.settings import DBT_PROJECT_DIR


def _cold_resource() -> LeanDbtCliResource:
    """The project's resource running the real dbt (no warm server)."""
    return LeanDbtCliResource(project_dir=str(DBT_PROJECT_DIR), profiles_dir=str(DBT_PROJECT_DIR), target="local",
                              dbt_executable=dbt_executable())


def _env(settings) -> dict[str, str]:
    return {"NETFLIX_ELT_HOME": str(settings.home), "NETFLIX_ELT_DUCKDB_MEMORY_LIMIT": "1GB"}


def _ls(dbt: LeanDbtCliResource, env: dict, monkeypatch) -> str:
    """dbt.log of a `dbt ls`, with dbt's debug events (the resource logs at info by default)."""
    return _invoke(dbt, ["ls", "--select", "fct_ratings"], {"DBT_LOG_LEVEL_FILE": "debug", **env}, monkeypatch)[1]


def _invoke(dbt: LeanDbtCliResource, args: list[str], env: dict, monkeypatch) -> tuple[Path, str]:
    with monkeypatch.context() as m:
        for name, value in env.items():
            m.setenv(name, value)
        invocation = dbt.cli(args)
        invocation.wait()
    keep_partial_parse(invocation, DBT_PROJECT_DIR)
    return Path(invocation.target_path), (Path(invocation.target_path) / "dbt.log").read_text()


def test_invocations_write_no_json_artifacts_and_an_info_log_unless_the_environment_asks(local_settings, monkeypatch):
    dbt = _cold_resource()
    env = _env(local_settings)
    # `dbt compile` of one model writes every artifact dbt writes: manifest, graph, results.
    local_settings.home.mkdir(parents=True, exist_ok=True)  # for its (empty) warehouse
    args = ["compile", "--select", "stg_movies"]
    lean, lean_log = _invoke(dbt, args, env, monkeypatch)
    full, full_log = _invoke(dbt, args, {**env, "DBT_WRITE_JSON": "true", "DBT_LOG_LEVEL_FILE": "debug"}, monkeypatch)
    artifacts = {"manifest.json", "run_results.json", "graph.gpickle"}
    assert artifacts <= {p.name for p in full.iterdir()}
    assert not artifacts & {p.name for p in lean.iterdir()}
    assert (lean / "partial_parse.msgpack").exists()  # the next invocation still starts from this parse
    assert (lean / "compiled").is_dir()  # and the SQL dbt ran is still there to read
    levels = lambda log: {json.loads(line)["info"]["level"] for line in log.splitlines()}  # noqa: E731
    assert levels(lean_log) == {"info"} and "debug" in levels(full_log)
    assert "Compiled node 'stg_movies' is:" in lean_log  # what the console shows stays in the log


def test_a_new_ratings_window_does_not_make_the_next_invocation_parse_the_project_again(local_settings, monkeypatch):
    dbt = _cold_resource()
    env = _env(local_settings)
    _ls(dbt, env, monkeypatch)  # may parse everything: this home's profile is new to the saved parse
    log = _ls(dbt, {**env, "NETFLIX_ELT_RATINGS_WINDOW_START": "2000-01-01 00:00:00",
                    "NETFLIX_ELT_RATINGS_WINDOW_END": "2000-02-01 00:00:00"}, monkeypatch)
    assert '"code": "I024"' not in log  # dbt's UnableToPartialParse: "... profile has changed" etc.
    assert "Unable to do partial parsing" not in log
    assert '"code": "I041"' not in log  # not even a file re-parsed: the window is not read at parse time


def test_an_invocations_parse_replaces_the_projects_saved_one(tmp_path):
    class Invocation:
        target_path = tmp_path / "invocation"

    Invocation.target_path.mkdir()
    (Invocation.target_path / PARTIAL_PARSE_FILE).write_bytes(b"fresh parse")
    project = tmp_path / "project"
    keep_partial_parse(Invocation(), project)
    assert (project / "target" / PARTIAL_PARSE_FILE).read_bytes() == b"fresh parse"
    assert [p.name for p in (project / "target").iterdir()] == [PARTIAL_PARSE_FILE]  # no temp file left


def test_the_first_invocation_after_prepare_parses_nothing(local_settings, monkeypatch):
    # dagster-dbt's preparer leaves the seeds marked as changed; prepare() parses them again.
    from netflix_elt.dbt_manifest import prepare

    env = _env(local_settings)
    with monkeypatch.context() as m:
        for name, value in env.items():
            m.setenv(name, value)
        prepare()
    dbt = _cold_resource()
    log = _ls(dbt, env, monkeypatch)
    assert "Nothing changed, skipping partial parsing" in log



# dbt renders inline SQL in its own process: what it prints is the window that process was given
SHOW_WINDOW = "select '{{ env_var(\"NETFLIX_ELT_RATINGS_WINDOW_START\", \"unset\") }}' as window_start"


def _shown(invocation) -> str:
    return "\n".join(str(event.raw_event["info"]["msg"]) for event in invocation.stream_raw_events())


def test_an_invocations_env_reaches_its_dbt_process_and_nothing_else(local_settings, monkeypatch):
    """The ratings window is handed to one dbt process (through the client, via the invocation's
    target folder): the run worker's environment never holds it, and the next invocation,
    given none, does not see it."""
    import os

    from netflix_elt.resources.dbt_cli import lean_dbt_resource

    monkeypatch.delenv("NETFLIX_ELT_RATINGS_WINDOW_START", raising=False)
    dbt = lean_dbt_resource(DBT_PROJECT_DIR, "local", warm_start=False, profile_env=_env(local_settings))
    local_settings.home.mkdir(parents=True, exist_ok=True)
    before = dict(os.environ)
    args = ["show", "--inline", SHOW_WINDOW]
    given = _shown(dbt.cli(args, env={"NETFLIX_ELT_RATINGS_WINDOW_START": "2015-01-01 00:00:00"}))
    assert dict(os.environ) == before  # the worker's environment was never written
    not_given = _shown(dbt.cli(args))
    assert "2015-01-01 00:00:00" in given and "unset" not in given
    assert "unset" in not_given and "2015-01-01" not in not_given


def test_a_dbt_invocation_silent_for_longer_than_its_bound_is_stopped_with_a_clear_failure(local_settings):
    """dbt-snowflake retries a request Snowflake never answers without end; the step's watchdog
    stops a dbt that prints nothing for longer than the bound. Here: a DuckDB query far longer
    than a 3 s bound."""
    import time

    import pytest

    from netflix_elt.assets.dbt_events import asset_events
    from netflix_elt.assets.dbt_watchdog import SilentDbt
    from netflix_elt.resources.dbt_cli import lean_dbt_resource

    dbt = lean_dbt_resource(DBT_PROJECT_DIR, "local", warm_start=False, profile_env=_env(local_settings))
    local_settings.home.mkdir(parents=True, exist_ok=True)
    slow = "select count(*) as n from range(200000) a, range(200000) b where (a.range * b.range) % 7 = 3"
    invocation = dbt.cli(["show", "--inline", slow])
    started = time.monotonic()
    with pytest.raises(SilentDbt, match="printed nothing for 3 s and was stopped"):
        list(asset_events(invocation, idle_timeout_s=3))
    assert time.monotonic() - started < 30  # dbt's start-up (parse, connect) prints as it goes
    assert invocation.process.poll() is not None  # nothing left running


def test_when_turning_dbt_events_into_dagster_events_fails_the_dbt_process_is_stopped(local_settings, monkeypatch):
    """An error in the step's own event handling must not leave dbt running (it would hold the
    DuckDB file after its step failed)."""
    import pytest

    from netflix_elt.assets import dbt_events
    from netflix_elt.resources.dbt_cli import lean_dbt_resource

    def broken(*args, **kwargs):
        raise RuntimeError("a bug in the step's event handling")

    dbt = lean_dbt_resource(DBT_PROJECT_DIR, "local", warm_start=False, profile_env=_env(local_settings))
    local_settings.home.mkdir(parents=True, exist_ok=True)
    slow = "select count(*) as n from range(200000) a, range(200000) b where (a.range * b.range) % 7 = 3"
    invocation = dbt.cli(["show", "--inline", slow])
    monkeypatch.setattr(dbt_events, "row_count_of", broken)  # the first dbt event raises
    with pytest.raises(RuntimeError, match="a bug in the step's event handling"):
        list(dbt_events.asset_events(invocation))
    assert invocation.process.poll() is not None  # stopped, not left computing


def test_snapshot_lineage_is_given_only_where_the_snapshot_selects_its_parent_as_it_is():
    """The project's snapshots are `relation:` snapshots (``select * from {{ ref(...) }}``); a
    snapshot written as SQL may compute its columns, and a model has compiled SQL that dagster-dbt
    reads, so neither gets a lineage made up from column names."""
    import dagster as dg

    from netflix_elt.assets.dbt_events import snapshot_lineage
    from netflix_elt.dbt_manifest import dbt_project

    manifest = json.loads(dbt_project.manifest_path.read_text())
    key_of = lambda unique_id: dg.AssetKey(unique_id.split(".")[-1])  # noqa: E731
    snap = manifest["nodes"]["snapshot.netflix_elt.snap_movies"]
    lineage = snapshot_lineage(snap, ["movie_id", "TITLE", "dbt_valid_to"], manifest, key_of)
    assert lineage.deps_by_column == {
        "movie_id": [dg.TableColumnDep(asset_key=dg.AssetKey("stg_movies"), column_name="movie_id")],
        "title": [dg.TableColumnDep(asset_key=dg.AssetKey("stg_movies"), column_name="title")],
        "dbt_valid_to": [],
    }
    computed = {**snap, "raw_code": "select movie_id, upper(title) as title from {{ ref('stg_movies') }}"}
    assert snapshot_lineage(computed, ["movie_id", "title"], manifest, key_of) is None
    model = manifest["nodes"]["model.netflix_elt.stg_movies"]
    assert snapshot_lineage(model, ["movie_id"], manifest, key_of) is None
