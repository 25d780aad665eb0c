"""The Dagster UI's GraphQL calls, as small functions over a running stack (dagster_stack.py).

Each function sends what the UI sends for one user action (the mutations and variables are
those of dagster-webserver's bundled UI: ``LaunchAssetExecutionButton.tsx``,
``LaunchAssetChoosePartitionsDialog.tsx``, ``SensorSwitch.tsx``, ...), so a test that passes
here passes for a user clicking through ``netflix-elt dev``. Everything returns plain dicts
and lists; asset keys are given as ``"raw/ratings"`` strings (or path lists).

Failures the UI would show as a toast (``PythonError``, ``InvalidSubsetError``, ...) raise
``UIActionError`` with the message the UI would show.
"""

from __future__ import annotations

import time
from typing import Iterable, Sequence

from netflix_elt_tests.dagster_stack import LOCATION, REPOSITORY, Stack

ASSET_JOB = "__ASSET_JOB"  # the implicit job every asset of the repository is in
UI_TAGS = [{"key": "dagster/from_ui", "value": "true"}]  # uiExecutionTags.tsx: added to every UI launch

RUN_FINISHED = {"SUCCESS", "FAILURE", "CANCELED"}
BACKFILL_FINISHED = {"COMPLETED", "COMPLETED_SUCCESS", "COMPLETED_FAILED", "FAILED", "CANCELED"}


class UIActionError(RuntimeError):
    """The UI would have shown this as an error toast."""


class Timeout(AssertionError):
    """Something did not happen in time (an AssertionError so pytest shows it plainly)."""


def key_path(key: str | Sequence[str]) -> list[str]:
    return key.split("/") if isinstance(key, str) else list(key)


def key_input(key: str | Sequence[str]) -> dict:
    return {"path": key_path(key)}


def key_string(path: Sequence[str]) -> str:
    return "/".join(path)


def _raise_unless(result: dict, typename: str, action: str) -> dict:
    if result["__typename"] != typename:
        message = result.get("message") or result.get("errors") or result
        raise UIActionError(f"{action}: {result['__typename']}: {message}")
    return result


ERROR_FIELDS = """
    __typename
    ... on Error { message }
    ... on PythonError { message stack }
    ... on RunConfigValidationInvalid { errors { message } }
"""

METADATA_FIELDS = """
    label
    description
    __typename
    ... on TextMetadataEntry { text }
    ... on IntMetadataEntry { intValue intRepr }
    ... on FloatMetadataEntry { floatValue }
    ... on BoolMetadataEntry { boolValue }
    ... on JsonMetadataEntry { jsonString }
    ... on MarkdownMetadataEntry { mdStr }
    ... on PathMetadataEntry { path }
    ... on UrlMetadataEntry { url }
    ... on TimestampMetadataEntry { timestamp }
"""


def metadata_dict(entries: Iterable[dict]) -> dict:
    """``metadataEntries`` as {label: value} (the value of whichever field the entry type has)."""
    out = {}
    for entry in entries:
        value = None
        for name in ("text", "intValue", "intRepr", "floatValue", "boolValue", "jsonString", "mdStr", "path", "url",
                     "timestamp"):
            if entry.get(name) is not None:
                value = entry[name]
                break
        out[entry["label"]] = value if value is not None else entry.get("description")
    return out


# --- Materialize (the asset graph's / catalogue's "Materialize" button) -------------------------

ASSET_LOADER_QUERY = """
query LaunchAssetLoaderQuery($assetKeys: [AssetKeyInput!]!) {
  assetNodes(assetKeys: $assetKeys) {
    assetKey { path }
    jobNames
    isPartitioned
    assetChecksOrError {
      __typename
      ... on AssetChecks { checks { name jobNames blocking } }
    }
  }
}
"""

LAUNCH_RUN_MUTATION = """
mutation LaunchPipelineExecution($executionParams: ExecutionParams!) {
  launchPipelineExecution(executionParams: $executionParams) {
    ... on LaunchRunSuccess { run { id runId pipelineName status } }
    %s
  }
}
""" % ERROR_FIELDS


def checks_of_assets(stack: Stack, asset_keys: Sequence[str | Sequence[str]], job_name: str = ASSET_JOB) -> list[dict]:
    """The checks the UI's Materialize button sends with a selection (``getAssetCheckHandleInputs``):
    every check on the selected assets that is in the job, as ``AssetCheckHandleInput`` dicts."""
    nodes = stack.graphql(ASSET_LOADER_QUERY, {"assetKeys": [key_input(k) for k in asset_keys]})["assetNodes"]
    found = {key_string(n["assetKey"]["path"]) for n in nodes}
    missing = {key_string(key_path(k)) for k in asset_keys} - found
    if missing:
        raise UIActionError(f"no asset nodes for {sorted(missing)}")
    handles = []
    for node in nodes:
        checks = node["assetChecksOrError"].get("checks") or []
        for check in checks:
            if not check["jobNames"] or job_name in check["jobNames"]:
                handles.append({"name": check["name"], "assetKey": {"path": node["assetKey"]["path"]}})
    return handles


def _check_handle(check) -> dict:
    """A check as ``{"assetKey": {"path": [...]}, "name": ...}``, from that dict, an
    ``(asset_key, name)`` pair or ``"asset/key:check_name"``."""
    if isinstance(check, dict):
        return check
    if isinstance(check, str):
        asset, name = check.rsplit(":", 1)
        return {"assetKey": key_input(asset), "name": name}
    asset, name = check
    return {"assetKey": key_input(asset), "name": name}


def launch_assets(stack: Stack, asset_keys: Sequence[str | Sequence[str]], check_keys=None,
                  partition_key: str | None = None, tags: dict | None = None) -> str:
    """UI: select assets in the graph, click "Materialize" (for one partition: "Materialize..."
    and pick that partition, a single run). Returns the run id.

    ``check_keys=None`` sends the checks the UI sends: every check on the selected assets
    (``checks_of_assets``); pass a list (``"asset/key:check"`` strings, pairs or handle dicts)
    for an explicit check selection, ``()`` for none (the launchpad with checks unticked).
    """
    checks = checks_of_assets(stack, asset_keys) if check_keys is None else [_check_handle(c) for c in check_keys]
    run_tags = [{"key": k, "value": str(v)} for k, v in (tags or {}).items()]
    if partition_key is not None:  # fetchTagsAndConfigForAssetJob: the partition's tags
        run_tags.append({"key": "dagster/partition", "value": partition_key})
    run_tags = [t for t in run_tags if t["key"] != "dagster/from_ui"] + UI_TAGS
    params = {
        "mode": "default",
        "executionMetadata": {"tags": run_tags},
        "runConfigData": "{}",
        "selector": {
            "repositoryLocationName": LOCATION,
            "repositoryName": REPOSITORY,
            "pipelineName": ASSET_JOB,
            "assetSelection": [key_input(k) for k in asset_keys],
            "assetCheckSelection": checks,
        },
    }
    result = stack.graphql(LAUNCH_RUN_MUTATION, {"executionParams": params})["launchPipelineExecution"]
    return _raise_unless(result, "LaunchRunSuccess", "launch run")["run"]["runId"]


# --- Backfill (the "Materialize partitions" dialog, "Launch backfill") -------------------------

LAUNCH_BACKFILL_MUTATION = """
mutation LaunchPartitionBackfill($backfillParams: LaunchBackfillParams!) {
  launchPartitionBackfill(backfillParams: $backfillParams) {
    ... on LaunchBackfillSuccess { backfillId launchedRunIds }
    ... on PartitionKeysNotFoundError { partitionKeys }
    %s
  }
}
""" % ERROR_FIELDS

BACKFILL_QUERY = """
query BackfillStatus($backfillId: String!) {
  partitionBackfillOrError(backfillId: $backfillId) {
    __typename
    ... on PartitionBackfill {
      id
      status
      isAssetBackfill
      partitionNames
      numPartitions
      timestamp
      endTimestamp
      assetSelection { path }
      assetCheckSelection { name assetKey { path } }
      error { message stack }
      runs { runId status }
      assetBackfillData {
        assetBackfillStatuses {
          __typename
          ... on AssetPartitionsStatusCounts {
            assetKey { path }
            numPartitionsTargeted numPartitionsInProgress numPartitionsMaterialized numPartitionsFailed
          }
          ... on UnpartitionedAssetStatus { assetKey { path } inProgress materialized failed }
        }
      }
    }
    ... on Error { message }
  }
}
"""


def launch_backfill(stack: Stack, asset_keys: Sequence[str | Sequence[str]], partition_names: Sequence[str],
                    tags: dict | None = None) -> str:
    """UI: select assets, "Materialize...", pick partitions, "Launch backfill" (an asset backfill:
    the dialog's params for the implicit asset job, with no partition set). Returns the backfill id."""
    backfill_tags = [{"key": k, "value": str(v)} for k, v in (tags or {}).items() if k != "dagster/from_ui"] + UI_TAGS
    params = {
        "tags": backfill_tags,
        "assetSelection": [key_input(k) for k in asset_keys],
        "partitionNames": list(partition_names),
        "fromFailure": False,
    }
    result = stack.graphql(LAUNCH_BACKFILL_MUTATION, {"backfillParams": params})["launchPartitionBackfill"]
    return _raise_unless(result, "LaunchBackfillSuccess", "launch backfill")["backfillId"]


def backfill_status(stack: Stack, backfill_id: str) -> dict:
    """UI: the backfill's page (Overview -> Backfills -> the backfill). ``status`` is a
    ``BulkActionStatus``; ``runs`` its runs; ``assets`` per asset key the partition counts."""
    result = stack.graphql(BACKFILL_QUERY, {"backfillId": backfill_id})["partitionBackfillOrError"]
    backfill = dict(_raise_unless(result, "PartitionBackfill", f"backfill {backfill_id}"))
    statuses = (backfill.pop("assetBackfillData") or {}).get("assetBackfillStatuses") or []
    backfill["assets"] = {key_string(s["assetKey"]["path"]): {k: v for k, v in s.items() if k not in ("assetKey", "__typename")}
                          for s in statuses}
    backfill["assetSelection"] = [key_string(k["path"]) for k in backfill.get("assetSelection") or []]
    backfill["error"] = (backfill.get("error") or {}).get("message")
    return backfill


def wait_backfill(stack: Stack, backfill_id: str, timeout: float = 300, poll: float = 2) -> dict:
    """Poll the backfill's page until it is finished (completed, failed or canceled) and its
    runs too; returns the last ``backfill_status``."""
    deadline = time.monotonic() + timeout
    status = backfill_status(stack, backfill_id)
    while time.monotonic() < deadline:
        runs_done = all(r["status"] in RUN_FINISHED for r in status["runs"])
        if status["status"] in BACKFILL_FINISHED and runs_done:
            return status
        time.sleep(poll)
        status = backfill_status(stack, backfill_id)
    raise Timeout(f"backfill {backfill_id} not finished within {timeout:.0f} s: status {status['status']}, "
                  f"runs {[(r['runId'][:8], r['status']) for r in status['runs']]}, error {status['error']}")


# --- Sensors (Automation -> the sensor's switch, its tick history) ------------------------------

SENSOR_FIELDS = """
  __typename
  ... on Sensor {
    id
    name
    minIntervalSeconds
    sensorState { id selectorId status }
  }
  ... on Error { message }
"""

START_SENSOR_MUTATION = """
mutation StartSensor($sensorSelector: SensorSelector!) {
  startSensor(sensorSelector: $sensorSelector) { %s }
}
""" % SENSOR_FIELDS

SENSOR_QUERY = """
query SensorRoot($sensorSelector: SensorSelector!) {
  sensorOrError(sensorSelector: $sensorSelector) { %s }
}
""" % SENSOR_FIELDS

STOP_SENSOR_MUTATION = """
mutation StopRunningSensor($id: String!) {
  stopSensor(id: $id) {
    __typename
    ... on StopSensorMutationResult { instigationState { id status } }
    ... on Error { message }
  }
}
"""

SENSOR_TICKS_QUERY = """
query SensorTicks($sensorSelector: SensorSelector!, $limit: Int) {
  sensorOrError(sensorSelector: $sensorSelector) {
    __typename
    ... on Sensor {
      sensorState {
        status
        ticks(limit: $limit) {
          tickId status timestamp endTimestamp runIds runKeys skipReason cursor
          error { message stack causes { message stack } }
        }
      }
    }
    ... on Error { message }
  }
}
"""


def python_error_text(error: dict | None, stack_lines: int = 6) -> str | None:
    """A ``PythonError`` as the UI's error dialog shows it: the message, each cause's message,
    and the last lines of the innermost stack."""
    if not error:
        return None
    chain = [error, *(error.get("causes") or [])]
    text = "\n".join(e["message"].strip() for e in chain)
    stack = "".join(chain[-1].get("stack") or [])
    return text + ("\n" + "\n".join(stack.splitlines()[-stack_lines:]) if stack else "")


def _sensor_selector(name: str) -> dict:
    return {"repositoryLocationName": LOCATION, "repositoryName": REPOSITORY, "sensorName": name}


def sensor(stack: Stack, name: str) -> dict:
    """UI: Automation -> the sensor's page (its state: ``sensorState.status`` RUNNING/STOPPED)."""
    result = stack.graphql(SENSOR_QUERY, {"sensorSelector": _sensor_selector(name)})["sensorOrError"]
    return _raise_unless(result, "Sensor", f"sensor {name}")


def start_sensor(stack: Stack, name: str) -> dict:
    """UI: Automation -> switch the sensor on (``SensorSwitch``'s ``StartSensor``)."""
    result = stack.graphql(START_SENSOR_MUTATION, {"sensorSelector": _sensor_selector(name)})["startSensor"]
    return _raise_unless(result, "Sensor", f"start sensor {name}")


def stop_sensor(stack: Stack, name: str) -> dict:
    """UI: Automation -> switch the sensor off (``StopRunningSensor`` with the state's id)."""
    state_id = sensor(stack, name)["sensorState"]["id"]
    result = stack.graphql(STOP_SENSOR_MUTATION, {"id": state_id})["stopSensor"]
    return _raise_unless(result, "StopSensorMutationResult", f"stop sensor {name}")["instigationState"]


def sensor_ticks(stack: Stack, name: str, limit: int = 25) -> list[dict]:
    """UI: the sensor page's tick history, newest first: ``status`` (SUCCESS/SKIPPED/FAILURE/
    STARTED), ``runIds``, ``runKeys``, ``skipReason``, ``cursor``, ``error`` (message or None)."""
    result = stack.graphql(SENSOR_TICKS_QUERY, {"sensorSelector": _sensor_selector(name), "limit": limit})["sensorOrError"]
    ticks = _raise_unless(result, "Sensor", f"sensor {name}")["sensorState"]["ticks"]
    return [dict(t, error=python_error_text(t["error"])) for t in ticks]


# --- Runs (the Runs page, a run's page) ---------------------------------------------------------

RUNS_QUERY = """
query RunsRoot($limit: Int, $filter: RunsFilter) {
  runsOrError(limit: $limit, filter: $filter) {
    __typename
    ... on Runs {
      results {
        runId status jobName creationTime startTime endTime
        tags { key value }
        assetSelection { path }
        assetCheckSelection { name assetKey { path } }
      }
    }
    ... on Error { message }
  }
}
"""

RUN_QUERY = """
query RunRoot($runId: ID!) {
  runOrError(runId: $runId) {
    __typename
    ... on Run {
      runId status jobName startTime endTime
      tags { key value }
      assetSelection { path }
      assetCheckSelection { name assetKey { path } }
      stepStats { stepKey status startTime endTime }
    }
    ... on Error { message }
  }
}
"""

RUN_LOGS_QUERY = """
query RunLogs($runId: ID!, $afterCursor: String) {
  logsForRun(runId: $runId, afterCursor: $afterCursor) {
    __typename
    ... on EventConnection {
      cursor
      hasMore
      events {
        __typename
        ... on MessageEvent { message level stepKey eventType }
        ... on ErrorEvent { error { message causes { message } } }
      }
    }
    ... on Error { message }
  }
}
"""


def unmaterialized(stack: Stack, asset_keys, partitions: Sequence[str], run_ids) -> dict[str, list[str]]:
    """Per asset, the partitions none of these runs materialized (empty: all of them were)."""
    missing = {}
    for asset in asset_keys:
        done = {m["partition"] for m in latest_materializations(stack, asset, partitions=partitions) if m["runId"] in run_ids}
        if set(partitions) - done:
            missing[asset] = sorted(set(partitions) - done)
    return missing


def wait_ticks(stack: Stack, name: str, predicate, timeout: float, what: str, poll: float = 2) -> list[dict]:
    """Poll the sensor's ticks (newest first) until ``predicate(ticks)`` holds; fail naming
    ``what`` was awaited, with the latest ticks, when it does not within ``timeout``."""
    deadline = time.monotonic() + timeout
    ticks = sensor_ticks(stack, name)
    while not predicate(ticks):
        if time.monotonic() > deadline:
            summary = [(t["status"], t["runIds"], t["error"], t["skipReason"]) for t in ticks[:6]]
            raise AssertionError(f"sensor {name}: no {what} within {timeout:.0f} s; ticks (newest first): {summary}")
        time.sleep(poll)
        ticks = sensor_ticks(stack, name)
    return ticks


def _plain_run(run: dict) -> dict:
    run = dict(run)
    run["tags"] = {t["key"]: t["value"] for t in run.get("tags") or []}
    run["assetSelection"] = [key_string(k["path"]) for k in run.get("assetSelection") or []]
    run["assetCheckSelection"] = [f"{key_string(c['assetKey']['path'])}:{c['name']}"
                                  for c in run.get("assetCheckSelection") or []]
    return run


def runs(stack: Stack, limit: int = 50, statuses: Sequence[str] | None = None, tags: dict | None = None) -> list[dict]:
    """UI: the Runs page, newest first (optionally filtered by status / tags, as its filter bar)."""
    run_filter = {}
    if statuses:
        run_filter["statuses"] = list(statuses)
    if tags:
        run_filter["tags"] = [{"key": k, "value": v} for k, v in tags.items()]
    result = stack.graphql(RUNS_QUERY, {"limit": limit, "filter": run_filter or None})["runsOrError"]
    return [_plain_run(r) for r in _raise_unless(result, "Runs", "runs")["results"]]


def run(stack: Stack, run_id: str) -> dict:
    """UI: a run's page (status, selection, tags, step stats)."""
    result = stack.graphql(RUN_QUERY, {"runId": run_id})["runOrError"]
    return _plain_run(_raise_unless(result, "Run", f"run {run_id}"))


def run_events(stack: Stack, run_id: str) -> list[dict]:
    """UI: a run's event log (every event: ``__typename``, ``message``, ``level``, ``stepKey``,
    ``eventType``, ``error``)."""
    events, cursor = [], None
    while True:
        result = stack.graphql(RUN_LOGS_QUERY, {"runId": run_id, "afterCursor": cursor})["logsForRun"]
        page = _raise_unless(result, "EventConnection", f"logs of run {run_id}")
        events.extend(page["events"])
        cursor = page["cursor"]
        if not page["hasMore"]:
            return events


def failure_messages(stack: Stack, run_id: str) -> list[str]:
    """The messages a user reads in a failed run's log: step failures, run failure, and errors."""
    messages = []
    for event in run_events(stack, run_id):
        error = event.get("error") or {}
        is_failure = "Failure" in event["__typename"] or event.get("level") in ("ERROR", "CRITICAL") or error
        if not is_failure:
            continue
        text = f"[{event['__typename']}{' ' + event['stepKey'] if event.get('stepKey') else ''}] {event.get('message', '')}"
        if error.get("message"):
            text += f"\n  {error['message'].strip()}"
            text += "".join(f"\n  caused by: {c['message'].strip()}" for c in error.get("causes") or [])
        messages.append(text)
    return messages


class RunFailed(AssertionError):
    def __init__(self, run_id: str, status: str, messages: list[str]):
        self.run_id, self.status, self.messages = run_id, status, messages
        super().__init__(f"run {run_id} ended {status}:\n" + "\n".join(messages))


def wait_run(stack: Stack, run_id: str, timeout: float = 300, poll: float = 1, raise_on_failure: bool = True) -> str:
    """Watch a run's page until it finishes; returns its status (SUCCESS, or CANCELED). On
    FAILURE raises ``RunFailed`` with its failure events' messages (unless told not to)."""
    deadline = time.monotonic() + timeout
    status = run(stack, run_id)["status"]
    while status not in RUN_FINISHED:
        if time.monotonic() > deadline:
            raise Timeout(f"run {run_id} still {status} after {timeout:.0f} s")
        time.sleep(poll)
        status = run(stack, run_id)["status"]
    if status == "FAILURE" and raise_on_failure:
        raise RunFailed(run_id, status, failure_messages(stack, run_id))
    return status


def wait_no_active_runs(stack: Stack, timeout: float = 300, poll: float = 1) -> None:
    """Until the Runs page shows nothing queued or in progress (e.g. before reading the
    warehouse file, which allows one process while a run writes)."""
    active = ["QUEUED", "NOT_STARTED", "STARTING", "STARTED", "CANCELING"]
    deadline = time.monotonic() + timeout
    while True:
        left = runs(stack, limit=50, statuses=active)
        if not left:
            return
        if time.monotonic() > deadline:
            raise Timeout(f"runs still active after {timeout:.0f} s: {[(r['runId'][:8], r['status']) for r in left]}")
        time.sleep(poll)


def run_step_stats(stack: Stack, run_id: str) -> dict[str, dict]:
    """UI: a run's step list (Gantt chart): per step key its ``status`` (SUCCESS, FAILURE,
    SKIPPED, IN_PROGRESS, ...), ``startTime``, ``endTime``."""
    return {s["stepKey"]: {k: v for k, v in s.items() if k != "stepKey"} for s in run(stack, run_id)["stepStats"]}


# --- Assets (an asset's page: Checks tab, Events / Partitions tabs) -----------------------------

CHECK_EXECUTIONS_QUERY = """
query AssetCheckDetailsQuery($assetKey: AssetKeyInput!, $checkName: String!, $limit: Int!, $partition: String) {
  assetCheckExecutions(assetKey: $assetKey, checkName: $checkName, limit: $limit, partition: $partition) {
    id runId status timestamp partition stepKey
    evaluation {
      success severity description partition timestamp
      metadataEntries { %s }
    }
  }
}
""" % METADATA_FIELDS

MATERIALIZATIONS_QUERY = """
query AssetMaterializations($assetKey: AssetKeyInput!, $partitions: [String!], $limit: Int) {
  assetOrError(assetKey: $assetKey) {
    __typename
    ... on Asset {
      assetMaterializations(partitions: $partitions, limit: $limit) {
        runId partition timestamp stepKey description
        metadataEntries { %s }
      }
    }
    ... on Error { message }
  }
}
""" % METADATA_FIELDS


def asset_check_executions(stack: Stack, asset_key: str | Sequence[str], check_name: str, limit: int = 25,
                           partition: str | None = None) -> list[dict]:
    """UI: an asset's Checks tab -> the check's execution history, newest first: ``status``
    (SUCCEEDED, FAILED, EXECUTION_FAILED, SKIPPED, IN_PROGRESS), ``runId``, ``partition``,
    ``evaluation`` (``success``, ``severity``, ``description``, ``metadata`` as a dict) or None."""
    out = []
    variables = {"assetKey": key_input(asset_key), "checkName": check_name, "limit": limit, "partition": partition}
    for execution in stack.graphql(CHECK_EXECUTIONS_QUERY, variables)["assetCheckExecutions"]:
        execution = dict(execution)
        evaluation = execution.get("evaluation")
        if evaluation:
            evaluation = dict(evaluation)
            evaluation["metadata"] = metadata_dict(evaluation.pop("metadataEntries"))
            execution["evaluation"] = evaluation
        out.append(execution)
    return out


def latest_materializations(stack: Stack, asset_key: str | Sequence[str], partitions: Sequence[str] | None = None,
                            limit: int = 100) -> list[dict]:
    """UI: an asset's Events tab (or its Partitions tab for ``partitions``): materializations,
    newest first, each with ``runId``, ``partition``, ``timestamp`` (ms, a string) and
    ``metadata`` as a dict."""
    variables = {"assetKey": key_input(asset_key), "partitions": list(partitions) if partitions else None, "limit": limit}
    result = stack.graphql(MATERIALIZATIONS_QUERY, variables)["assetOrError"]
    events = _raise_unless(result, "Asset", f"asset {key_string(key_path(asset_key))}")["assetMaterializations"]
    return [dict({k: v for k, v in e.items() if k != "metadataEntries"}, metadata=metadata_dict(e["metadataEntries"]))
            for e in events]
