"""The dbt project as dagster-dbt sees it, kept apart from the asset definitions.

``@dbt_assets`` reads the manifest when its module is imported, so preparing the manifest
(``netflix-elt prepare``, run by ``make setup``) must not import the assets.
"""

import os
import sys
from pathlib import Path

from dagster_dbt import DbtProject

from netflix_elt.settings import DBT_PROJECT_DIR
from netflix_elt.warm_dbt import dbt_executable

dbt_project = DbtProject(project_dir=DBT_PROJECT_DIR, profiles_dir=DBT_PROJECT_DIR, target="local")


def _dbt_on_path() -> None:
    """dagster-dbt's preparer looks for ``dbt`` on PATH; put this interpreter's bin folder
    first, so a venv that was never activated works. Only the ``prepare`` command does this
    (to its own process): importing the code location changes nothing."""
    bin_dir = str(Path(sys.executable).parent)
    if bin_dir not in os.environ.get("PATH", "").split(os.pathsep):
        os.environ["PATH"] = bin_dir + os.pathsep + os.environ.get("PATH", "")


def prepare() -> None:
    """Parse the dbt project into target/manifest.json, and leave a saved parse that the first
    run can use as it is."""
    _dbt_on_path()
    dbt_project.preparer.prepare(dbt_project)
    # dagster-dbt's preparer marks the seeds as changed in the saved parse, because a manifest
    # is often built in one place (CI, an image build) and run in another, where the seeds'
    # recorded paths would be wrong. This checkout runs where it is prepared, so parse the
    # seeds again here, once, instead of in the first run's first dbt step (~1.3 s).
    from netflix_elt.resources.dbt_cli import LeanDbtCliResource

    dbt = LeanDbtCliResource(project_dir=dbt_project, dbt_executable=dbt_executable())
    dbt.cli(["parse", "--quiet"], target_path=dbt_project.target_path).wait()

