"""One place decides each setting and its default: dbt's profile and the README agree with it."""

from __future__ import annotations

import json
import re

import yaml

from netflix_elt.settings import DBT_PROJECT_DIR, REPO_ROOT, Settings, SnowflakeSettings

SECRETS = {SnowflakeSettings.PASSWORD_ENV, SnowflakeSettings.PRIVATE_KEY_PATH_ENV, SnowflakeSettings.PRIVATE_KEY_PASSPHRASE_ENV}
ENV_VAR = re.compile(r"env_var\('(?P<name>[A-Z0-9_]+)'(?P<default>\s*,)?")


def _profile_outputs() -> dict[str, str]:
    """Each output of profiles.yml as its YAML text (env_var calls are inside its values)."""
    profile = yaml.safe_load((DBT_PROJECT_DIR / "profiles.yml").read_text())["netflix_elt"]["outputs"]
    return {name: json.dumps(output) for name, output in profile.items()}


def test_every_value_the_dbt_profile_reads_without_a_default_comes_from_settings_dbt_env():
    outputs = _profile_outputs()
    assert set(outputs) == {"local", "prod"}
    env = {"SNOWFLAKE_ACCOUNT": "a", "SNOWFLAKE_USER": "u"}
    for target, text in outputs.items():
        provided = Settings.from_env({**env, "NETFLIX_ELT_TARGET": target}).dbt_env()
        required = {m["name"] for m in ENV_VAR.finditer(text) if not m["default"]} - SECRETS
        assert required and required <= set(provided), (target, required - set(provided))
        defaulted = {m["name"] for m in ENV_VAR.finditer(text) if m["default"]} - SECRETS
        assert not defaulted, f"{target}: profile defaults drift from Settings: {defaulted}"


def test_settings_fill_in_the_defaults_the_readme_documents():
    prod = Settings.from_env({"NETFLIX_ELT_TARGET": "prod", "SNOWFLAKE_ACCOUNT": "a", "SNOWFLAKE_USER": "u"}).dbt_env()
    readme = (REPO_ROOT / "README.md").read_text()
    for name in ("SNOWFLAKE_DATABASE", "SNOWFLAKE_WAREHOUSE", "SNOWFLAKE_ROLE"):
        assert f"`{prod[name]}`" in readme, (name, prod[name])
    for name in ("NETFLIX_ELT_SNOWFLAKE_LOGIN_TIMEOUT_S", "NETFLIX_ELT_SNOWFLAKE_NETWORK_TIMEOUT_S",
                 "NETFLIX_ELT_SNOWFLAKE_STATEMENT_TIMEOUT_S"):
        assert f"`{name}`" in readme, name


def test_netflix_elt_dagster_home_points_runs_at_an_existing_instance_and_leaves_its_dagster_yaml_alone(tmp_path):
    from netflix_elt.instance import ensure_dagster_home

    deployment = tmp_path / "deployment"
    deployment.mkdir()
    (deployment / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    settings = Settings.from_env({"NETFLIX_ELT_HOME": str(tmp_path / "home"), "NETFLIX_ELT_DAGSTER_HOME": str(deployment)})
    assert ensure_dagster_home(settings) == deployment
    assert (deployment / "dagster.yaml").read_text() == "telemetry:\n  enabled: false\n"
    assert Settings.from_env({"NETFLIX_ELT_HOME": str(tmp_path / "home")}).dagster_home == tmp_path / "home" / "dagster_home"
