"""Building the definitions has no side effects: no environment written, no folder created,
no dbt parse (the manifest comes from `netflix-elt prepare`)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from netflix_elt.settings import DBT_PROJECT_DIR, REPO_ROOT

PROBE = r"""
import json, os, sys
before_env = dict(os.environ)
manifest = os.path.join(sys.argv[1], "target", "manifest.json")
mtime = os.stat(manifest).st_mtime_ns
import netflix_elt.definitions as d
defs = d.build_definitions()
changed = sorted(k for k in set(before_env) | set(os.environ) if before_env.get(k) != os.environ.get(k))
print(json.dumps({"changed_env": changed, "manifest_rewritten": os.stat(manifest).st_mtime_ns != mtime,
                  "assets": len(list(defs.resolve_asset_graph().get_all_asset_keys()))}))
"""


def test_importing_and_building_the_definitions_writes_no_environment_no_folder_and_parses_no_dbt(tmp_path):
    home = tmp_path / "never-created"
    env = dict(os.environ, NETFLIX_ELT_HOME=str(home), DAGSTER_IS_DEV_CLI="1")  # as under `dagster dev`
    out = subprocess.run([sys.executable, "-c", PROBE, str(DBT_PROJECT_DIR)], env=env, cwd=REPO_ROOT,
                         capture_output=True, text=True, timeout=300, check=True).stdout
    result = json.loads(out.strip().splitlines()[-1])
    assert result["assets"] > 30
    assert result["changed_env"] == [], result["changed_env"]
    assert not result["manifest_rewritten"]
    assert not home.exists()
