"""Package definition. Versions are pinned to what was measured to install and work together
offline (see README, "Dependencies"): the Dagster family on one release train, dbt-core below
1.12 (newer releases need a parser wheel fetched from outside the package index)."""

from setuptools import find_packages, setup

DAGSTER = "1.13.27"
DAGSTER_INTEGRATIONS = "0.29.27"

setup(
    name="netflix_elt",
    version="0.1.0",
    description="A runnable reference ELT platform over MovieLens: Dagster + dbt, DuckDB locally, S3 + Snowflake in production.",
    packages=find_packages(exclude=["netflix_elt_tests", "netflix_elt_tests.*", "tools", "tools.*"]),  # tools/: dev tools
    python_requires=">=3.10",
    install_requires=[
        f"dagster=={DAGSTER}",
        f"dagster-webserver=={DAGSTER}",
        f"dagster-dbt=={DAGSTER_INTEGRATIONS}",
        f"dagster-aws=={DAGSTER_INTEGRATIONS}",
        f"dagster-snowflake=={DAGSTER_INTEGRATIONS}",
        f"dagster-duckdb=={DAGSTER_INTEGRATIONS}",
        # Run, event and schedule storage in PostgreSQL for the production topology (deploy/).
        f"dagster-postgres=={DAGSTER_INTEGRATIONS}",
        "dbt-core>=1.11,<1.12",
        "dbt-duckdb>=1.11,<1.12",
        "dbt-snowflake>=1.12,<1.13",
        "duckdb>=1.4,<3",
        # The ratings extract streams DuckDB's result as Arrow batches into per-month CSV writers.
        "pyarrow>=18",
        "packaging>=24",
        # s3fs and boto3 together, so the resolver keeps one botocore that both accept.
        "boto3>=1.40",
        "s3fs>=2025.9.0",
        # Charts of the local dashboard; plotly.js is inlined into the page (no CDN, no pandas).
        "plotly>=6,<8",
    ],
    extras_require={
        "test": [
            "pytest>=8",
            "moto[server]>=5.1",
            # The Snowflake emulator (wire protocol server) the prod path is tested against; with
            # sqlglot and sqlglotc pinned together (constraints.txt), else `import sqlglot` breaks.
            "fakesnow[server]==0.12.1",
            # Drives Debian's Chromium (/usr/bin/chromium): the browser tests (dashboard, UI flows)
            # and the README's pictures (tools/screenshots.py); its own browser downloads
            # (`playwright install`) are never used.
            "playwright>=1.50,<2",
        ],
    },
    entry_points={
        "console_scripts": [
            "netflix-elt=netflix_elt.cli:main",
            "netflix-elt-generate=netflix_elt.synthetic:main",
        ],
    },
)
