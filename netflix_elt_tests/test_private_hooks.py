"""The private hooks (netflix_elt/warm_dbt/private_hooks.py): each one is still there in the
installed versions, shaped as it was checked, and gives the same results as the stock path.

If a test here fails after an upgrade, read the hook's entry in the module's docstring, check
the new version's code, and update CHECKED (and constraints.txt) only once it is right."""

from __future__ import annotations

import inspect
import json
import os
import subprocess
from functools import cached_property
from pathlib import Path

import dagster as dg
import pytest

from netflix_elt.dbt_manifest import dbt_executable
from netflix_elt.warm_dbt import CLIENT, EXECUTABLE_ENV, WarmDbtServer, private_hooks


@pytest.mark.parametrize("hook", private_hooks.HOOKS)
def test_the_installed_versions_are_the_ones_each_private_hook_was_checked_against(hook):
    differ = private_hooks.mismatches(hook)
    assert not differ, (
        f"private hook {hook!r} was checked against other versions: {', '.join(differ)}. It is OFF until someone "
        f"re-checks the names it uses (netflix_elt/warm_dbt/private_hooks.py) and updates CHECKED and constraints.txt."
    )


def test_the_constraints_pin_exactly_the_checked_versions():
    pins = dict(line.split("==", 1) for line in Path(__file__).parents[1].joinpath("constraints.txt").read_text().split()
                if "==" in line)
    for hook, versions in private_hooks.CHECKED.items():
        for dist, checked in versions.items():
            if dist != "python":
                assert pins.get(dist) == checked, f"constraints.txt pins {dist}=={pins.get(dist)}; {hook} checked {checked}"


def test_the_dagster_dbt_members_the_hook_overrides_are_still_there_and_used_the_same_way():
    from dagster_dbt import DbtCliResource

    version = DbtCliResource.__dict__.get("_cli_version")
    assert isinstance(version, cached_property), "DbtCliResource._cli_version is no longer a cached_property"
    adapter = DbtCliResource.__dict__.get("_initialize_dbt_core_adapter")
    assert adapter is not None, "DbtCliResource._initialize_dbt_core_adapter is gone"
    assert list(inspect.signature(adapter).parameters) == ["self", "args"], "_initialize_dbt_core_adapter's signature changed"
    cli = inspect.getsource(DbtCliResource.cli)
    # What the overrides rely on: cli() asks the version, builds the adapter only for dbt Core
    # (major < 2) inside a try, and hands whatever it got to the invocation.
    for needle in ("self._cli_version.major < 2", "adapter = self._initialize_dbt_core_adapter(args)",
                   "adapter=adapter", "cli_version=self._cli_version"):
        assert needle in cli, f"DbtCliResource.cli no longer contains {needle!r}"


def test_the_dbt_and_cpython_names_the_server_hooks_use_are_still_there():
    import atexit
    import gc

    from dbt.contracts.graph.manifest import Manifest
    from dbt.contracts.project import Configuration, PackageConfig, ProfileConfig, Project, ProjectFlags
    from dbt.contracts.selection import SelectorFile
    from dbt.parser import manifest as parser_manifest
    from dbt_common.clients import jinja

    for cls in (ProjectFlags, ProfileConfig, Project, PackageConfig, SelectorFile, Configuration):
        assert callable(getattr(cls, "json_schema", None)), f"{cls.__qualname__}.json_schema is gone"
    assert "decoder" in inspect.signature(Manifest.from_msgpack).parameters, "Manifest.from_msgpack(decoder=) changed"
    assert callable(getattr(Manifest, "to_msgpack", None)), "Manifest.to_msgpack is gone"
    for name in ("extended_mashumuro_decoder", "extended_mashumaro_encoder"):
        assert callable(getattr(parser_manifest, name, None)), f"dbt.parser.manifest.{name} is gone"
    assert callable(getattr(getattr(jinja, "template_cache", None), "get_node_template", None)), \
        "dbt_common.clients.jinja.template_cache.get_node_template is gone"
    assert callable(getattr(atexit, "_run_exitfuncs", None)), "atexit._run_exitfuncs is gone"
    assert callable(gc.freeze)


def test_a_hook_whose_versions_differ_stays_off_with_a_warning(monkeypatch):
    monkeypatch.setitem(private_hooks.CHECKED, "freeze", {"python": "2.7"})
    with pytest.warns(UserWarning, match="private hook 'freeze' off"):
        assert private_hooks.enabled("freeze,fast_exit") == {"fast_exit"}
    assert private_hooks.enabled("none") == frozenset()
    with pytest.raises(ValueError, match="unknown hook"):
        private_hooks.enabled("frezee")


def _dbt_events(invocation) -> list[tuple]:
    """An invocation's dbt events as comparable between two invocations (name, node, status)."""
    found = []
    for event in invocation.stream_raw_events():
        info, data = event.raw_event["info"], event.raw_event["data"]
        if info["level"] != "debug":
            node = data.get("node_info", {})
            found.append((info["name"], node.get("unique_id"), node.get("node_status")))
    return found


def test_the_dagster_dbt_hook_gives_the_same_dbt_events_as_stock_dagster_dbt(local_settings, monkeypatch):
    from dagster_dbt import DbtCliResource

    from netflix_elt.dbt_manifest import dbt_project
    from netflix_elt.resources.dbt_cli import DBT_DEFAULTS, LeanDbtCliResource
    from netflix_elt.resources.factory import build_resources

    assert LeanDbtCliResource.__mro__[1] is private_hooks.dagster_dbt_base(True)  # the hook is in use here
    lean = build_resources(local_settings)["dbt"]
    local_settings.home.mkdir(parents=True, exist_ok=True)  # for the warehouse file
    for name, value in {**DBT_DEFAULTS, **lean.profile_env}.items():  # what the lean resource adds, for both
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("NETFLIX_ELT_WARM_DBT_SOCKET", raising=False)  # both cold: only the hook differs
    stock = DbtCliResource(project_dir=lean.project_dir, profiles_dir=lean.profiles_dir, target=lean.target,
                           dbt_executable=dbt_executable())
    events = {}
    for name, resource in (("hooked", lean), ("stock", stock)):
        invocation = resource.cli(["seed", "--select", "genres"], manifest=dbt_project.manifest_path)
        events[name] = _dbt_events(invocation)
        assert invocation.process.wait() == 0, name
    assert events["hooked"] == events["stock"]
    assert {(uid, status) for _name, uid, status in events["stock"] if uid} >= {("seed.netflix_elt.genres", "success")}, \
        [e for e in events["stock"] if e[1]]


PROBE_MODEL = "select 1 as id, 'one' as name union all select 2, 'two'"
PROBE_SCHEMA = """
version: 2
models:
  - name: probe_model
    columns:
      - name: id
        data_tests: [unique, not_null]
"""


@pytest.fixture(scope="module")
def probe(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("hooks_probe")
    (root / "models").mkdir()
    (root / "models" / "probe_model.sql").write_text(PROBE_MODEL)
    (root / "models" / "schema.yml").write_text(PROBE_SCHEMA)
    (root / "dbt_project.yml").write_text("name: hooks_probe\nversion: '1.0'\nconfig-version: 2\nprofile: hooks_probe\n")
    (root / "profiles.yml").write_text(
        "hooks_probe:\n  target: file\n  outputs:\n    file:\n      type: duckdb\n      threads: 1\n"
        "      path: \"{{ env_var('PROBE_DB') }}\"\n"
    )
    return root


def _build(probe: Path, tmp_path: Path, name: str, env: dict) -> tuple[int, list[tuple], list]:
    """`dbt build` of the probe through the warm client: exit code, dbt's events (name, node,
    status; info level and up) and the model's rows as read back from the warehouse file."""
    import duckdb

    db = tmp_path / f"{name}.duckdb"
    result = subprocess.run(
        [str(CLIENT), "build", "--log-format", "json", "--project-dir", str(probe), "--profiles-dir", str(probe),
         "--target-path", str(tmp_path / f"target-{name}")],
        env={**os.environ, "DBT_SEND_ANONYMOUS_USAGE_STATS": "false", "PROBE_DB": str(db), **env},
        cwd=probe, capture_output=True, text=True, timeout=300,
    )
    events = []
    for line in result.stdout.splitlines():
        event = json.loads(line)
        if event["info"]["level"] == "debug":
            continue
        node = event["data"].get("node_info", {})
        events.append((event["info"]["name"], node.get("unique_id"), node.get("node_status")))
    with duckdb.connect(str(db)) as con:  # also: the fork closed the file (dbt-duckdb's exit handler ran)
        rows = con.sql("select * from main.probe_model order by id").fetchall()
    return result.returncode, events, rows


def test_the_server_hooks_give_the_same_dbt_results_and_events_as_a_server_without_them_and_a_cold_dbt(
        probe, tmp_path, monkeypatch):
    results = {"cold": _build(probe, tmp_path, "cold", {EXECUTABLE_ENV: dbt_executable()})}
    for hooks in ("none", "warm_up,freeze,fast_exit"):
        monkeypatch.setenv(private_hooks.ENV, hooks)  # the server reads it as it starts
        server = WarmDbtServer(real_executable="/bin/false", preload=["dbt.adapters.duckdb"], home=tmp_path / "home",
                               saved_parse=tmp_path / "target-cold" / "partial_parse.msgpack")
        try:
            server.wait_ready()
            assert f"private hooks: {'none' if hooks == 'none' else 'fast_exit, freeze, warm_up'}" in server.log_path.read_text()
            results[hooks] = _build(probe, tmp_path, hooks.replace(",", "-"), server.env())
        finally:
            server.stop()
    code, events, rows = results["cold"]
    assert code == 0 and rows == [(1, "one"), (2, "two")]
    assert {(uid, status) for _name, uid, status in events if uid} >= {("model.hooks_probe.probe_model", "success")}, events
    for name, result in results.items():
        assert result == results["cold"], f"{name} differs from a cold dbt"
