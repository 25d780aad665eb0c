"""The environment switch: the only module that reads environment variables.

Everything the pipeline needs to know about *where* it runs is resolved here once, into a
frozen ``Settings``; resources, the dbt target and the CLI are built from that object. Tests
build their own ``Settings`` instead of patching the environment.

Secrets (AWS keys, Snowflake password) are deliberately *not* fields here: boto3 and the
Snowflake connector read them from the environment themselves, so they never pass through
our code, our logs or a Dagster run config.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Mapping

REPO_ROOT = Path(__file__).resolve().parent.parent
SHIPPED_DATA = REPO_ROOT / "data" / "ml-latest-small"
DBT_PROJECT_DIR = REPO_ROOT / "dbt_project"

TARGETS = ("local", "prod")
STORES = ("folder", "s3")


class SettingsError(ValueError):
    """A setting has a value the project cannot use; the message names the variable."""


def _flag(env: Mapping[str, str], name: str, default: bool) -> bool:
    value = env.get(name, "").strip().lower()
    if not value:
        return default
    if value not in ("1", "0", "true", "false", "yes", "no", "on", "off"):
        raise SettingsError(f"{name}={value!r}: expected 1/0, true/false, yes/no or on/off")
    return value in ("1", "true", "yes", "on")


def _seconds(env: Mapping[str, str], name: str, default: int) -> int:
    value = env.get(name, "").strip()
    if not value:
        return default
    if not value.isdigit() or int(value) < 1:
        raise SettingsError(f"{name}={value!r}: expected a whole number of seconds, at least 1")
    return int(value)


@dataclass(frozen=True)
class SnowflakeSettings:
    """Where the prod warehouse is. Non-secret values only: the password or private key are
    handed to dagster-snowflake as ``dg.EnvVar`` references (resolved at run time, shown in
    the UI by name only), never as values."""

    account: str | None = None
    user: str | None = None
    database: str = "NETFLIX_ELT"
    warehouse: str = "NETFLIX_ELT_WH"
    loader_role: str = "LOADER"
    transformer_role: str = "TRANSFORMER"
    reporter_role: str = "REPORTER"  # reads MARTS only: the dashboard and BI tools
    # Bounded waits (seconds): logging in; one request, retries of a failing one included (the
    # connector otherwise retries an erroring endpoint for as long as it answers); one statement.
    login_timeout_s: int = 60
    network_timeout_s: int = 120
    statement_timeout_s: int = 3600
    # dbt's threads on Snowflake; an emulator (fakesnow) gets one: it can stall for good when
    # several sessions hit it at once (seen once with four, the first nodes of a build).
    threads: int = 4
    auth: str = "password"  # password | key_pair (which env var holds the secret)
    has_private_key_passphrase: bool = False  # an encrypted key: reference its passphrase variable too
    host: str | None = None  # set for an emulator (fakesnow); None = derived from the account
    port: int = 443
    protocol: str = "https"
    stage_mode: str | None = None  # external (S3 stage) | internal (PUT); None = by host
    integration_role_arn: str | None = None

    PASSWORD_ENV = "SNOWFLAKE_PASSWORD"
    PRIVATE_KEY_PATH_ENV = "SNOWFLAKE_PRIVATE_KEY_PATH"
    PRIVATE_KEY_PASSPHRASE_ENV = "SNOWFLAKE_PRIVATE_KEY_PASSPHRASE"

    @property
    def dbt_threads(self) -> int:
        return 1 if self.is_emulator else self.threads

    @property
    def is_emulator(self) -> bool:
        return (self.host or "").strip().lower() in ("127.0.0.1", "localhost", "::1", "[::1]")

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> "SnowflakeSettings":
        base = cls()
        port = env.get("SNOWFLAKE_PORT", "443")
        if not port.isdigit():
            raise SettingsError(f"SNOWFLAKE_PORT={port!r}: expected a port number")
        timeouts = {
            field: _seconds(env, name, getattr(base, field))
            for field, name in (("login_timeout_s", "NETFLIX_ELT_SNOWFLAKE_LOGIN_TIMEOUT_S"),
                                ("network_timeout_s", "NETFLIX_ELT_SNOWFLAKE_NETWORK_TIMEOUT_S"),
                                ("statement_timeout_s", "NETFLIX_ELT_SNOWFLAKE_STATEMENT_TIMEOUT_S"))
        }
        return cls(
            **timeouts,
            reporter_role=env.get("SNOWFLAKE_REPORTER_ROLE") or base.reporter_role,
            account=env.get("SNOWFLAKE_ACCOUNT") or None,
            user=env.get("SNOWFLAKE_USER") or None,
            database=env.get("SNOWFLAKE_DATABASE") or base.database,
            warehouse=env.get("SNOWFLAKE_WAREHOUSE") or base.warehouse,
            loader_role=env.get("SNOWFLAKE_LOADER_ROLE") or base.loader_role,
            transformer_role=env.get("SNOWFLAKE_ROLE") or base.transformer_role,
            auth="key_pair" if env.get(cls.PRIVATE_KEY_PATH_ENV) else "password",
            has_private_key_passphrase=bool(env.get(cls.PRIVATE_KEY_PASSPHRASE_ENV)),
            host=env.get("SNOWFLAKE_HOST") or None,
            port=int(port),
            protocol=env.get("SNOWFLAKE_PROTOCOL") or base.protocol,
            stage_mode=env.get("NETFLIX_ELT_SNOWFLAKE_STAGE") or None,
            integration_role_arn=env.get("SNOWFLAKE_INTEGRATION_ROLE_ARN") or None,
        )


@dataclass(frozen=True)
class Settings:
    home: Path = REPO_ROOT / ".netflix_elt_home"
    target: str = "local"  # dbt target and warehouse: local = DuckDB, prod = Snowflake
    store: str = "folder"  # object store: folder (default) or s3
    source: Path = SHIPPED_DATA  # MovieLens folder or zip (ml-latest-small, ml-20m, ml-25m...)
    bucket: str = "netflix-elt"
    s3_endpoint_url: str | None = None  # MinIO, SeaweedFS, moto... None = AWS
    s3_region: str = "us-east-1"
    # Bounded waits (seconds) of every S3 request attempt: connecting, and each read of a response.
    s3_connect_timeout_s: int = 5
    s3_read_timeout_s: int = 30
    synthetic_genome_tags: int = 64  # size of the stand-in genome when the source has none
    # DuckDB's buffer limit, per process (loads, the dbt subprocess). DuckDB spills to disk past
    # it; its own default (80% of RAM) lets one run's tree grow to several GiB at ml-25m.
    duckdb_memory_limit: str = "1GB"
    # Fork a run's dbt invocations from one process that has imported dbt (netflix_elt/warm_dbt).
    warm_dbt: bool = True
    snowflake: SnowflakeSettings = field(default_factory=SnowflakeSettings)
    dagster_home_dir: Path | None = None  # NETFLIX_ELT_DAGSTER_HOME (see dagster_home)

    @property
    def warehouse_path(self) -> Path:
        return self.home / "warehouse.duckdb"

    @property
    def store_root(self) -> Path:
        """Root of the folder store; ``<root>/<bucket>/raw/...`` mirrors the S3 layout."""
        return self.home / "object_store"

    @property
    def dashboard_dir(self) -> Path:
        return self.home / "dashboard"

    @property
    def dagster_home(self) -> Path:
        """The Dagster instance `netflix-elt run` and `dev` use: ``<home>/dagster_home`` (SQLite,
        written by netflix_elt/instance.py), or ``NETFLIX_ELT_DAGSTER_HOME``, e.g. a deployment's
        folder holding deploy/dagster.yaml, so a headless run records into its PostgreSQL."""
        return self.dagster_home_dir or self.home / "dagster_home"

    @property
    def work_dir(self) -> Path:
        """Scratch space for staged downloads and generated files (safe to delete)."""
        return self.home / "work"

    @property
    def quarantine_dir(self) -> Path:
        """Source rows the extract could not place (e.g. a rating without a valid time)."""
        return self.home / "quarantine"

    def with_home(self, home: Path) -> "Settings":
        return replace(self, home=Path(home))

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> "Settings":
        env = os.environ if environ is None else environ
        target = env.get("NETFLIX_ELT_TARGET", "local")
        if target not in TARGETS:
            raise SettingsError(f"NETFLIX_ELT_TARGET={target!r}: expected one of {TARGETS}")
        store = env.get("NETFLIX_ELT_STORE", "s3" if target == "prod" else "folder")
        if store not in STORES:
            raise SettingsError(f"NETFLIX_ELT_STORE={store!r}: expected one of {STORES}")
        source = Path(env.get("NETFLIX_ELT_SOURCE", str(SHIPPED_DATA))).expanduser()
        genome_tags = env.get("NETFLIX_ELT_SYNTHETIC_GENOME_TAGS", "64")
        if not genome_tags.isdigit() or int(genome_tags) < 1:
            raise SettingsError(f"NETFLIX_ELT_SYNTHETIC_GENOME_TAGS={genome_tags!r}: expected a positive integer")
        return cls(
            home=Path(env.get("NETFLIX_ELT_HOME", str(REPO_ROOT / ".netflix_elt_home"))).expanduser().resolve(),
            target=target,
            store=store,
            source=source.resolve(),
            bucket=env.get("NETFLIX_ELT_BUCKET", "netflix-elt"),
            s3_endpoint_url=env.get("NETFLIX_ELT_S3_ENDPOINT_URL") or None,
            s3_region=env.get("AWS_REGION", env.get("AWS_DEFAULT_REGION", "us-east-1")),
            s3_connect_timeout_s=_seconds(env, "NETFLIX_ELT_S3_CONNECT_TIMEOUT_S", cls.s3_connect_timeout_s),
            s3_read_timeout_s=_seconds(env, "NETFLIX_ELT_S3_READ_TIMEOUT_S", cls.s3_read_timeout_s),
            synthetic_genome_tags=int(genome_tags),
            duckdb_memory_limit=env.get("NETFLIX_ELT_DUCKDB_MEMORY_LIMIT", "1GB"),
            warm_dbt=_flag(env, "NETFLIX_ELT_WARM_DBT", default=True),
            snowflake=SnowflakeSettings.from_env(env),
            dagster_home_dir=Path(env["NETFLIX_ELT_DAGSTER_HOME"]).expanduser().resolve()
            if env.get("NETFLIX_ELT_DAGSTER_HOME") else None,
        )

    @property
    def dbt_idle_timeout_s(self) -> int:
        """How long a dbt invocation may print nothing before it is stopped: on Snowflake the
        longest statement plus one request (dbt-snowflake sets no network timeout of its own);
        DuckDB is in-process, no bound."""
        if self.target != "prod":
            return 0
        return self.snowflake.statement_timeout_s + self.snowflake.network_timeout_s

    def dbt_env(self) -> dict[str, str]:
        """Every value ``dbt_project/profiles.yml`` reads, resolved here (defaults included), so
        dbt, the loader and the README cannot disagree: the profile reads them without defaults
        of its own, and the dbt resource hands them to each invocation. Secrets are not among
        them: dbt reads ``SNOWFLAKE_PASSWORD`` (or the key) from the environment itself."""
        env = {
            "NETFLIX_ELT_HOME": str(self.home),
            "NETFLIX_ELT_DUCKDB_MEMORY_LIMIT": self.duckdb_memory_limit,
        }
        if self.target == "prod":
            sf = self.snowflake
            env.update({
                "SNOWFLAKE_ACCOUNT": sf.account or "",
                "SNOWFLAKE_USER": sf.user or "",
                "SNOWFLAKE_ROLE": sf.transformer_role,
                "SNOWFLAKE_WAREHOUSE": sf.warehouse,
                "SNOWFLAKE_DATABASE": sf.database,
                "SNOWFLAKE_HOST": sf.host or "",
                "SNOWFLAKE_PORT": str(sf.port),
                "SNOWFLAKE_PROTOCOL": sf.protocol,
                "NETFLIX_ELT_SNOWFLAKE_LOGIN_TIMEOUT_S": str(sf.login_timeout_s),
                "NETFLIX_ELT_SNOWFLAKE_STATEMENT_TIMEOUT_S": str(sf.statement_timeout_s),
                "NETFLIX_ELT_SNOWFLAKE_DBT_THREADS": str(sf.dbt_threads),
            })
        return env

    def export_for_dbt(self, environ: dict | None = None) -> None:
        """Put ``dbt_env()`` into an environment (a child process's, or this one's for a dbt
        parse): ``profiles.yml`` reads it."""
        env = os.environ if environ is None else environ
        env.update(self.dbt_env())
        env.setdefault("DBT_TARGET", self.target)
