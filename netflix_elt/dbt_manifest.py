"""The dbt project as dagster-dbt sees it, kept apart from the asset definitions.

``@dbt_assets`` reads the manifest when its module is imported, so preparing the manifest
(``netflix-elt prepare``, run by ``make setup``) must not import the assets.
"""

from dagster_dbt import DbtProject

from netflix_elt.settings import DBT_PROJECT_DIR

dbt_project = DbtProject(project_dir=DBT_PROJECT_DIR, profiles_dir=DBT_PROJECT_DIR, target="local")


def prepare() -> None:
    """Parse the dbt project into target/manifest.json."""
    dbt_project.preparer.prepare(dbt_project)
