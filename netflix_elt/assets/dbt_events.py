"""A dbt invocation's events as Dagster events, each materialization with its row count.

dagster-dbt's ``invocation.stream()`` already gives each model, seed and snapshot its column
schema (as the warehouse has it) and column-level lineage from the JSON line our post-hook logs
(macros/dagster_metadata.sql). This module is ``stream()`` plus two things, through dagster-dbt's
public pieces (``stream_raw_events`` and ``DbtCliEventMessage.to_default_asset_events``), so every
event still leaves as dbt reports it (nothing waits for the end of the invocation):

- the row count the same hook logs (``netflix_elt.row_count <n>``) for every table it builds, as
  ``dagster/row_count``;
- each column's description from the dbt project, which the warehouse's schema does not carry (the
  UI shows a materialization's column schema over the definition's);
- the column lineage again as a table (``column_lineage_table``), which the open-source UI shows;
- a failed test's compiled SQL (``failing_rows_query``): run it to see the failing rows;
- a bound on dbt's silence (``idle_timeout_s``, dbt_watchdog.py): a request Snowflake never
  answers would otherwise hang the step for ever;
- column lineage for snapshots, for which dbt writes no compiled SQL to read it from
  (``snapshot_lineage``);
- column lineage on Snowflake too: the post-hook reports the names relations have on the target
  (``netflix_elt.relations``), and the manifest handed to dagster-dbt is corrected with them
  (``TargetManifest``), since the code location's manifest is parsed against the local target.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Callable, Iterator

import dagster as dg
from dagster_dbt.core.dbt_cli_invocation import DbtCliInvocation

from netflix_elt.assets.dbt_watchdog import Watchdog, stop

ROW_COUNT_PREFIX = "netflix_elt.row_count "
RELATIONS_PREFIX = "netflix_elt.relations "
ROW_COUNT_KEY = "dagster/row_count"  # Dagster's documented key: the asset's plots chart it
COLUMN_SCHEMA_KEY = "dagster/column_schema"
COLUMN_LINEAGE_KEY = "dagster/column_lineage"
# Dagster's open-source UI stores column lineage but draws it only in Dagster+: the same
# lineage as a table in the materialization's metadata, readable on the asset page.
LINEAGE_TABLE_KEY = "column_lineage_table"


def _hook_line(raw_event: dict, prefix: str) -> str | None:
    """The rest of a post-hook log line that starts with ``prefix``, else None."""
    info = raw_event.get("info", {})
    message = info.get("msg") or ""
    if info.get("name") != "JinjaLogInfo" or not message.startswith(prefix):
        return None
    return message[len(prefix):]


def _unique_id(dagster_event) -> str | None:
    value = dagster_event.metadata.get("unique_id")
    return getattr(value, "value", value)


def row_count_of(raw_event: dict) -> tuple[str, int] | None:
    """(unique_id, rows) when this dbt log event is the post-hook's row count."""
    rest = _hook_line(raw_event, ROW_COUNT_PREFIX)
    if rest is None:
        return None
    unique_id = raw_event.get("data", {}).get("node_info", {}).get("unique_id")
    figure = rest.strip()
    if not unique_id or not figure.isdigit():
        return None
    return unique_id, int(figure)


def relations_of(raw_event: dict) -> dict | None:
    """{"adapter_type": ..., "relations": {unique_id: name}} when this is the post-hook's line."""
    rest = _hook_line(raw_event, RELATIONS_PREFIX)
    return None if rest is None else json.loads(rest)


class TargetManifest:
    """The code location's manifest (parsed against the local target) as this invocation's target
    names things: each relation the post-hook reported, and the SQL dialect. On DuckDB nothing
    differs and the manifest is used as it is."""

    def __init__(self, manifest: dict):
        self.original = manifest
        self.current = manifest

    def learn(self, reported: dict) -> None:
        changes = {uid: name for uid, name in reported.get("relations", {}).items()
                   if self._node(self.current, uid).get("relation_name") not in (None, name)}
        dialect = reported.get("adapter_type") or self.current["metadata"].get("adapter_type")
        if not changes and dialect == self.current["metadata"].get("adapter_type"):
            return
        if self.current is self.original:  # copy what is changed, once
            self.current = {**self.original, "metadata": dict(self.original["metadata"]),
                            "nodes": dict(self.original["nodes"]), "sources": dict(self.original["sources"])}
        self.current["metadata"]["adapter_type"] = dialect
        for uid, name in changes.items():
            table = "sources" if uid.startswith("source.") else "nodes"
            self.current[table][uid] = {**self.current[table][uid], "relation_name": name}

    @staticmethod
    def _node(manifest: dict, uid: str) -> dict:
        return (manifest["sources"] if uid.startswith("source.") else manifest["nodes"]).get(uid, {})


def asset_events(invocation: DbtCliInvocation, idle_timeout_s: float = 0) -> Iterator:
    """``idle_timeout_s``: stop dbt when it says nothing for that long (dbt_watchdog.py; 0: never)."""
    with Watchdog(invocation.process, idle_timeout_s, "dbt") as watchdog:
        try:
            yield from _asset_events(invocation, watchdog)
        except Exception:
            if watchdog.fired:
                raise watchdog.failure() from None
            raise
        finally:
            # However the stream ends early (an error here, the step abandoned), dbt must not go
            # on: it would hold the DuckDB file and keep writing after its step has failed.
            stop(invocation.process)
        if watchdog.fired:
            raise watchdog.failure()


def _asset_events(invocation: DbtCliInvocation, watchdog: Watchdog) -> Iterator:
    row_counts: dict[str, int] = {}
    manifest = TargetManifest(invocation.manifest)

    def asset_key_of(unique_id: str) -> dg.AssetKey:
        return invocation.dagster_dbt_translator.get_asset_spec(invocation.manifest, unique_id, invocation.project).key

    for event in invocation.stream_raw_events():
        watchdog.beat()
        counted = row_count_of(event.raw_event)
        if counted:
            row_counts[counted[0]] = counted[1]
            continue
        reported = relations_of(event.raw_event)
        if reported:
            manifest.learn(reported)
            continue
        for dagster_event in event.to_default_asset_events(
            manifest=manifest.current,
            dagster_dbt_translator=invocation.dagster_dbt_translator,
            context=invocation.context,
            target_path=invocation.target_path,
            project=invocation.project,
        ):
            yield with_failing_rows_query(with_node_facts(dagster_event, row_counts, invocation.manifest, asset_key_of),
                                          Path(invocation.target_path))


def with_node_facts(dagster_event, row_counts: dict[str, int], manifest,
                    asset_key_of: Callable[[str], dg.AssetKey] | None = None) -> object:
    """``asset_key_of``: a dbt unique_id's asset key (for a snapshot's lineage; None: none added)."""
    if not isinstance(dagster_event, (dg.Output, dg.AssetMaterialization)):
        return dagster_event
    unique_id = _unique_id(dagster_event)
    metadata = dict(dagster_event.metadata)
    if unique_id in row_counts:
        metadata[ROW_COUNT_KEY] = dg.MetadataValue.int(row_counts.pop(unique_id))
    schema = metadata.get(COLUMN_SCHEMA_KEY)
    node = manifest.get("nodes", {}).get(unique_id, {})
    if COLUMN_LINEAGE_KEY not in metadata and asset_key_of and isinstance(schema, dg.TableSchemaMetadataValue):
        lineage = snapshot_lineage(node, [c.name for c in schema.schema.columns], manifest, asset_key_of)
        if lineage is not None:
            metadata[COLUMN_LINEAGE_KEY] = dg.MetadataValue.column_lineage(lineage)
    lineage = metadata.get(COLUMN_LINEAGE_KEY)
    if isinstance(lineage, dg.TableColumnLineageMetadataValue):
        metadata[LINEAGE_TABLE_KEY] = dg.MetadataValue.md(lineage_table(lineage.column_lineage))
    if isinstance(schema, dg.TableSchemaMetadataValue) and node.get("columns"):
        metadata[COLUMN_SCHEMA_KEY] = dg.MetadataValue.table_schema(described(schema.schema, node["columns"]))
    return dagster_event.with_metadata(metadata)


# What dbt makes of a snapshot declared with `relation:` in YAML: the parent's rows, as they are.
SELECT_ALL_FROM_REF = re.compile(r"select\s+\*\s+from\s+\{\{\s*ref\(\s*['\"][\w.]+['\"]\s*\)\s*\}\}", re.IGNORECASE)


def snapshot_lineage(node: dict, columns: list[str], manifest: dict,
                     asset_key_of: Callable[[str], dg.AssetKey]) -> dg.TableColumnLineage | None:
    """A snapshot's column lineage. dbt writes no compiled SQL for snapshots, so dagster-dbt has
    none to read lineage from. A snapshot declared with ``relation:`` selects every column of its
    one parent and adds dbt's own fields: each column of the parent's name comes from that column,
    dbt's fields (``dbt_scd_id``, ``dbt_valid_from`` ...) from none. Other nodes, and snapshots
    written as SQL (which may compute their columns), get None."""
    parents = node.get("depends_on", {}).get("nodes", [])
    if (node.get("resource_type") != "snapshot" or len(parents) != 1
            or not SELECT_ALL_FROM_REF.fullmatch((node.get("raw_code") or "").strip())):
        return None
    parent = manifest.get("nodes", {}).get(parents[0]) or manifest.get("sources", {}).get(parents[0]) or {}
    parent_columns = {name.lower() for name in parent.get("columns", {})}
    if not parent_columns:
        return None
    key = asset_key_of(parents[0])
    return dg.TableColumnLineage(deps_by_column={
        column.lower(): [dg.TableColumnDep(asset_key=key, column_name=column.lower())] if column.lower() in parent_columns else []
        for column in columns
    })


def described(schema: dg.TableSchema, declared: dict) -> dg.TableSchema:
    """The warehouse's columns and types, with the descriptions the dbt project gives them."""
    by_name = {name.lower(): column for name, column in declared.items()}
    return dg.TableSchema(columns=[
        dg.TableColumn(
            name=column.name, type=column.type, constraints=column.constraints, tags=column.tags,
            description=by_name.get(column.name.lower(), {}).get("description") or column.description,
        )
        for column in schema.columns
    ])


def lineage_table(lineage: dg.TableColumnLineage) -> str:
    """One row per column: the upstream asset columns it is computed from."""
    rows = ["| column | computed from |", "|---|---|"]
    for column, deps in sorted(lineage.deps_by_column.items()):
        sources = ", ".join(sorted(f"`{d.asset_key.to_user_string()}.{d.column_name}`" for d in deps))
        rows.append(f"| `{column}` | {sources or '(no upstream column: a constant or a dbt snapshot field)'} |")
    return "\n".join(rows)


FAILING_ROWS_KEY = "failing_rows_query"
MAX_QUERY_CHARS = 6000


def with_failing_rows_query(dagster_event, target_path: Path):
    """A failed dbt test also shows the query that returns its failing rows: the test's SQL as
    dbt compiled it for this invocation (dbt's own figure, how many, is ``dagster_dbt/failed_row_count``).
    Storing the rows themselves (``store_failures``) would cost every run a relation per test."""
    if not isinstance(dagster_event, (dg.AssetCheckResult, dg.AssetCheckEvaluation)) or dagster_event.passed:
        return dagster_event
    unique_id = _unique_id(dagster_event) or ""
    name = unique_id.split(".")[2] if unique_id.count(".") >= 2 else None
    compiled = next((target_path / "compiled").rglob(f"{name}.sql"), None) if name else None
    if compiled is None:
        return dagster_event
    sql = compiled.read_text(errors="replace").strip()
    if len(sql) > MAX_QUERY_CHARS:
        sql = sql[:MAX_QUERY_CHARS] + "\n-- (cut; the whole query: " + str(compiled) + ")"
    return dagster_event.with_metadata(
        {**dagster_event.metadata, FAILING_ROWS_KEY: dg.MetadataValue.md(f"```sql\n{sql}\n```")})
