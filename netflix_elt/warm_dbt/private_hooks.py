"""Every private hook of dagster-dbt, dbt and CPython this project uses, and nothing else.

Each one is a measured start-up cost avoided (docs/warm-dbt.md, benchmarks/run_benchmarks.py
prints each gain next to the plain path). None is needed for correctness: with a hook off,
the stock code runs. A hook is applied only when the installed versions are exactly the ones
it was checked against (``CHECKED``, also pinned in constraints.txt) and
``NETFLIX_ELT_PRIVATE_HOOKS`` does not turn it off; otherwise the stock path runs, with a
warning naming the version that differs. netflix_elt_tests/test_private_hooks.py fails,
naming the name or version, when an upgrade removes or changes anything listed here, and
compares each hook's results with the stock behaviour.

The private names, by hook (``NETFLIX_ELT_PRIVATE_HOOKS``: a comma-separated list of hook
names to apply, ``all`` (the default: the hooks on by default, see ``DEFAULT``) or ``none``):

``dagster_dbt`` (in the run's process; ``LeanDbtCliResource``'s base class, see
``dagster_dbt_base``): overrides of two private members of
``dagster_dbt.DbtCliResource``, which ``DbtCliResource.cli`` uses before every invocation:

- ``DbtCliResource._cli_version`` (a ``functools.cached_property``): stock runs
  ``<dbt_executable> --version`` in a subprocess (~2.4 s, once per process) to tell dbt Core
  from the Fusion engine. Here: the installed ``dbt-core`` package's version.
- ``DbtCliResource._initialize_dbt_core_adapter(self, args)``: stock builds an in-process dbt
  adapter, profile and macro manifest before every invocation (~1.7 s each), used only by
  ``fetch_row_counts()`` / ``fetch_column_metadata()``, which this project does not call (and
  with DuckDB it opens the warehouse read-only beside the dbt that writes it). Here: None,
  which ``cli`` passes on as ``adapter=None`` (its own fallback when building one fails).

``warm_up`` (in the warm dbt server, before it forks; see ``warm_up``):

- ``dbt.contracts.project.ProjectFlags / ProfileConfig / Project / PackageConfig /
  Configuration``, ``dbt.contracts.selection.SelectorFile`` and each preloaded adapter's
  ``Plugin.credentials``: their ``json_schema()`` (cached per class; ~0.25 s per invocation);
- ``dbt.contracts.graph.manifest.Manifest.from_msgpack`` / ``.to_msgpack`` with
  ``dbt.parser.manifest.extended_mashumuro_decoder`` (sic) / ``extended_mashumaro_encoder``:
  mashumaro compiles the saved parse's reader and writer on first use;
- ``dbt_common.clients.jinja.template_cache.get_node_template``: the compiled Jinja template
  of each macro, cached by its source text (a macro changed since is compiled afresh).

``freeze`` (in the server): ``gc.freeze()`` once the warm-up is done (public and documented,
listed here because its gain comes with the warm-up's heap: ~145,000 objects each fork's
collections no longer walk).

``fast_exit`` (in each forked dbt): ``atexit._run_exitfuncs()`` (CPython's own shutdown
step: the exit handlers, e.g. dbt-duckdb's that closes the warehouse), then ``os._exit``,
skipping the interpreter's teardown of dbt's thousands of objects (~0.4 s per invocation).
"""

from __future__ import annotations

import functools
import os
import sys
import warnings
from importlib.metadata import PackageNotFoundError, version

ENV = "NETFLIX_ELT_PRIVATE_HOOKS"
HOOKS = ("dagster_dbt", "warm_up", "freeze", "fast_exit")
DEFAULT = frozenset(HOOKS)  # all measured worth their keep (docs/warm-dbt.md)

# What each hook was checked against: exactly these, or the hook stays off.
CHECKED: dict[str, dict[str, str]] = {
    "dagster_dbt": {"dagster-dbt": "0.29.27", "dbt-core": "1.11.16"},
    "warm_up": {"dbt-core": "1.11.16", "dbt-common": "1.39.0", "mashumaro": "3.14"},
    "freeze": {"python": "3.11"},
    "fast_exit": {"python": "3.11"},
}


def installed(dist: str) -> str | None:
    if dist == "python":
        return f"{sys.version_info[0]}.{sys.version_info[1]}"
    try:
        return version(dist)
    except PackageNotFoundError:
        return None


def mismatches(hook: str) -> list[str]:
    """What differs from the versions ``hook`` was checked against ([] if nothing)."""
    found = []
    for dist, checked in CHECKED[hook].items():
        have = installed(dist)
        if have != checked:
            found.append(f"{dist} {have or 'absent'} (checked: {checked})")
    if hook == "fast_exit" and sys.implementation.name != "cpython":
        found.append(f"{sys.implementation.name} (checked: cpython)")
    return found


def requested(value: str | None = None) -> frozenset[str]:
    """The hooks ``NETFLIX_ELT_PRIVATE_HOOKS`` asks for (before the version check)."""
    value = (os.environ.get(ENV) if value is None else value) or "all"
    value = value.strip().lower()
    if value in ("all", "1", "true", "yes", "on"):
        return DEFAULT
    if value in ("none", "0", "false", "no", "off"):
        return frozenset()
    names = frozenset(name.strip() for name in value.split(",") if name.strip())
    unknown = names - set(HOOKS)
    if unknown:
        raise ValueError(f"{ENV}: unknown hook(s) {sorted(unknown)}; known: {', '.join(HOOKS)}, all, none")
    return names


def enabled(value: str | None = None) -> frozenset[str]:
    """The hooks to apply: requested, and checked against the installed versions (a hook whose
    versions differ stays off, with a warning)."""
    chosen = set()
    for hook in requested(value):
        differ = mismatches(hook)
        if differ:
            warnings.warn(f"private hook {hook!r} off (stock behaviour instead): {', '.join(differ)}; "
                          "see netflix_elt/warm_dbt/private_hooks.py", stacklevel=2)
        else:
            chosen.add(hook)
    return frozenset(chosen)


# -- dagster_dbt ------------------------------------------------------------------------------

def dagster_dbt_base(apply: bool | None = None):
    """``DbtCliResource``, with the ``dagster_dbt`` hook's two overrides when it applies (or
    when ``apply`` says so: tests build both)."""
    return _dagster_dbt_base("dagster_dbt" in enabled() if apply is None else apply)


@functools.cache
def _dagster_dbt_base(apply: bool):
    from functools import cached_property
    from importlib.metadata import version as package_version

    from dagster_dbt import DbtCliResource
    from packaging import version as packaging_version

    if not apply:
        return DbtCliResource

    class DbtCliResourceWithoutStartupProbes(DbtCliResource):
        @cached_property
        def _cli_version(self) -> packaging_version.Version:
            return packaging_version.parse(package_version("dbt-core"))

        def _initialize_dbt_core_adapter(self, args):  # noqa: ARG002 - dagster-dbt's signature
            return None  # dagster-dbt then streams events exactly as before, without table metadata

    return DbtCliResourceWithoutStartupProbes


# -- warm_up, freeze, fast_exit (in the warm dbt server) --------------------------------------

def warm_up(preload: list[str], saved_parse: str | None = None) -> None:
    """Build, once, what every dbt invocation builds before its first model: the JSON schemas
    dbt validates its configuration against, and what reading a saved parse builds."""
    from dbt.contracts.project import Configuration, PackageConfig, ProfileConfig, Project, ProjectFlags
    from dbt.contracts.selection import SelectorFile

    classes = [ProjectFlags, ProfileConfig, Project, PackageConfig, SelectorFile, Configuration]
    classes += [sys.modules[m].Plugin.credentials for m in preload if hasattr(sys.modules[m], "Plugin")]
    for cls in classes:
        cls.json_schema()
    if saved_parse is not None:
        load_saved_parse(saved_parse)


def load_saved_parse(saved_parse: str) -> None:
    """Read and write a saved parse (``partial_parse.msgpack``) as dbt does, compile its
    macros' templates, and drop the result; mashumaro's compiled codecs and dbt's template
    cache stay. A parse that cannot be read is skipped with the reason on stderr (the
    server's log): each invocation then builds these itself."""
    try:
        from dbt.contracts.graph.manifest import Manifest
        from dbt.parser.manifest import extended_mashumaro_encoder, extended_mashumuro_decoder  # sic: dbt's spelling
        from dbt_common.clients.jinja import template_cache

        with open(saved_parse, "rb") as saved:
            manifest = Manifest.from_msgpack(saved.read(), decoder=extended_mashumuro_decoder)
        manifest.to_msgpack(extended_mashumaro_encoder)
    except Exception as error:  # noqa: BLE001 - a warm-up: dbt reports a bad parse when it reads one
        print(f"warm dbt: saved parse {saved_parse} not used for the warm-up: {error!r}", file=sys.stderr, flush=True)
        return
    for macro in manifest.macros.values():
        try:
            template_cache.get_node_template(macro)
        except Exception:  # noqa: BLE001, S112 - a macro that does not compile fails where dbt uses it
            continue


def freeze_heap() -> None:
    """Move everything alive into the garbage collector's permanent generation."""
    import gc

    gc.collect()  # the saved parse read for the warm-up goes before the rest is frozen
    gc.freeze()


def exit_fork(code: int):
    """End a forked dbt as the interpreter's shutdown would, minus its teardown."""
    import atexit

    atexit._run_exitfuncs()  # noqa: SLF001 - the private hook (see the module's docstring)
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    os._exit(code)
