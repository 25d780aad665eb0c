"""Resources for one environment, built from ``Settings`` (never from the environment directly)."""

from __future__ import annotations

from dagster_duckdb import DuckDBResource

from netflix_elt.assets.dashboard import DashboardSettings
from netflix_elt.assets.extract import ExtractSettings
from netflix_elt.resources.dbt_cli import lean_dbt_resource
from netflix_elt.resources.movielens_source import MovieLensSource
from netflix_elt.resources.object_store import FolderObjectStore, ObjectStore
from netflix_elt.resources.warehouse import DuckDBWarehouse, Warehouse
from netflix_elt.settings import DBT_PROJECT_DIR, Settings


def build_object_store(settings: Settings) -> ObjectStore:
    if settings.store == "s3":
        from netflix_elt.resources.s3_object_store import BoundedS3Resource, S3ObjectStore

        return S3ObjectStore(
            # Each call: the first try and 3 retries, each bounded by the connect and read timeouts
            # (BoundedS3Resource); a transient fault then retries the step (assets/store_faults.py).
            s3=BoundedS3Resource(endpoint_url=settings.s3_endpoint_url, region_name=settings.s3_region, max_attempts=3,
                                 connect_timeout_s=settings.s3_connect_timeout_s,
                                 read_timeout_s=settings.s3_read_timeout_s),
            bucket=settings.bucket,
            work_dir=str(settings.work_dir),
        )
    return FolderObjectStore(root=str(settings.store_root), bucket=settings.bucket)


def build_warehouse(settings: Settings) -> Warehouse:
    if settings.target == "prod":
        from netflix_elt.resources.snowflake_warehouse import build_snowflake_warehouse

        return build_snowflake_warehouse(settings)
    return DuckDBWarehouse(
        duckdb=DuckDBResource(
            database=str(settings.warehouse_path), connection_config={"memory_limit": settings.duckdb_memory_limit}
        )
    )


def build_resources(settings: Settings) -> dict:
    return {
        "source": MovieLensSource(
            path=str(settings.source),
            work_dir=str(settings.work_dir),
            synthetic_genome_tags=settings.synthetic_genome_tags,
        ),
        "object_store": build_object_store(settings),
        "warehouse": build_warehouse(settings),
        "dbt": lean_dbt_resource(DBT_PROJECT_DIR, settings.target, warm_start=settings.warm_dbt,
                                 profile_env=settings.dbt_env(), idle_timeout_s=settings.dbt_idle_timeout_s),
        "dashboard_settings": DashboardSettings(output_dir=str(settings.dashboard_dir)),
        "extract_settings": ExtractSettings(
            work_dir=str(settings.work_dir), quarantine_dir=str(settings.quarantine_dir),
            duckdb_memory_limit=settings.duckdb_memory_limit,
        ),
    }
