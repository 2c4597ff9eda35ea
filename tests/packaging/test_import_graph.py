"""The package's import graph: no cycles between subpackages, and no layer imports a higher one.

The graph is built with grimp from the package as installed: ``ui/`` and ``eval/`` sit at the
top of the repository but install as ``rag.ui`` and ``rag.eval`` (``package-dir`` in
pyproject.toml), so the sources are first laid out that way in a temporary folder. Lazy
(function-level) and ``TYPE_CHECKING`` imports count: they couple the code all the same.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import grimp
import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = "rag"

# Children of ``rag``, top to bottom: each may import only from lower layers, and those that
# share a layer not from each other. Measured, not wished for: the shells, the facade, the use
# cases, the pipeline stages, the toolbox every stage shares. A new child needs a place here.
LAYERS = (
    ("cli",),  # the `rag` command: starts the server, runs evaluations and rebuilds
    ("web", "eval", "rebuild"),  # API + UI on one port; benchmarks; `rag index rebuild`
    ("api", "ui"),  # HTTP API; Gradio app
    ("server",),  # what the API and the UI share (slots, uploads, streaming)
    ("assistant",),  # the typed facade every shell uses
    ("trials",),  # trial results as a cited table (reads passages as the answer path does)
    # a question end to end; adding files; history; a quote shown where it stands
    ("answer", "indexer", "conversation", "view"),
    ("rerank",),  # implements retrieve's Reranker; its generator method loads a generator
    ("verify", "generate", "retrieve"),
    ("store", "embed", "chunk"),
    ("ingest",),  # below store: the index stores each document's year (ingest.normalize)
    ("text", "schemas", "settings", "models", "paths", "references"),
    ("types", "errors"),
)

_DUMP = """
import json, sys
sys.path.insert(0, sys.argv[1])
import grimp
graph = grimp.build_graph(sys.argv[2], cache_dir=None)
imports = [
    [m, i, d["line_number"], d["line_contents"]]
    for m in sorted(graph.modules)
    for i in sorted(graph.find_modules_directly_imported_by(m))
    for d in graph.get_import_details(importer=m, imported=i)
]
print(json.dumps({"modules": sorted(graph.modules), "imports": imports}))
"""


def _installed_layout(dest: Path) -> Path:
    """The package's .py files under ``dest`` as the wheel lays them out (see ``package-dir``)."""
    package_dir = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"][
        "package-dir"
    ]
    for name, source in package_dir.items():
        target = dest.joinpath(*name.split("."))
        for path in (ROOT / source).rglob("*.py"):
            relative = path.relative_to(ROOT / source)
            (target / relative).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, target / relative)
    return dest


@pytest.fixture(scope="module")
def graph(tmp_path_factory: pytest.TempPathFactory) -> grimp.ImportGraph:
    """Built in a child process: this one has ``rag`` imported from the checkout already."""
    layout = _installed_layout(tmp_path_factory.mktemp("layout"))
    done = subprocess.run(
        [sys.executable, "-c", _DUMP, str(layout), PACKAGE],
        cwd=layout,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    dump = json.loads(done.stdout)
    built = grimp.ImportGraph()
    for module in dump["modules"]:
        built.add_module(module)
    for importer, imported, line_number, line_contents in dump["imports"]:
        built.add_import(
            importer=importer,
            imported=imported,
            line_number=line_number,
            line_contents=line_contents,
        )
    return built


def _chains(graph: grimp.ImportGraph, importer: str, imported: str) -> list[str]:
    """Each shortest chain, with the line that starts it, for a failure message."""
    out = []
    for chain in sorted(graph.find_shortest_chains(importer, imported, as_packages=True)):
        line = graph.get_import_details(importer=chain[0], imported=chain[1])[0]
        out.append(f"  {' -> '.join(chain)}  ({line['line_number']}: {line['line_contents']})")
    return out


def test_the_installed_layout_is_what_is_analysed(graph: grimp.ImportGraph) -> None:
    assert {"rag.ui.app", "rag.eval.harness", "rag.store.index"} <= graph.modules


def test_every_child_of_the_package_has_a_layer(graph: grimp.ImportGraph) -> None:
    layered = {f"{PACKAGE}.{name}" for layer in LAYERS for name in layer}
    children = graph.find_children(PACKAGE)
    assert not children - layered, "add these to a layer in LAYERS"
    assert not layered - children, "LAYERS names modules that no longer exist"


def test_no_import_cycles_between_subpackages(graph: grimp.ImportGraph) -> None:
    """At every level, the children of a package import each other without a cycle.

    A cycle through another package shows up one level higher, where both are children.
    """
    found = []
    for package in sorted(m for m in graph.modules if graph.find_children(m)):
        edges = _sibling_imports(graph, package)
        for cycle in _strongly_connected(edges):
            found.append(f"cycle among {', '.join(sorted(cycle))}:")
            found += [
                f"  {a} -> {b}  ({line})"
                for a in sorted(cycle)
                for b, line in sorted(edges[a].items())
                if b in cycle
            ]
    assert not found, "\n".join(found)


def _sibling_imports(graph: grimp.ImportGraph, package: str) -> dict[str, dict[str, str]]:
    """For each child of ``package``, the siblings it (or a descendant) imports, and one line."""
    owner: dict[str, str] = {}
    for child in graph.find_children(package):
        owner[child] = child
        owner |= dict.fromkeys(graph.find_descendants(child), child)
    edges: dict[str, dict[str, str]] = {child: {} for child in graph.find_children(package)}
    for module, child in sorted(owner.items()):
        for imported in sorted(graph.find_modules_directly_imported_by(module)):
            other = owner.get(imported, child)
            if other != child and other not in edges[child]:
                line = graph.get_import_details(importer=module, imported=imported)[0]
                edges[child][other] = f"{module}:{line['line_number']} {line['line_contents']}"
    return edges


def _strongly_connected(edges: dict[str, dict[str, str]]) -> list[set[str]]:
    """Groups of two or more nodes that all reach each other (a handful of nodes: brute force)."""
    reach: dict[str, set[str]] = {}
    for start in edges:
        seen: set[str] = set()
        todo = [start]
        while todo:
            for nxt in edges[todo.pop()]:
                if nxt not in seen:
                    seen.add(nxt)
                    todo.append(nxt)
        reach[start] = seen
    groups = {frozenset(b for b in edges if b in reach[a] and a in reach[b]) | {a} for a in edges}
    return [set(group) for group in groups if len(group) > 1]


def test_lower_layers_never_import_higher_ones(graph: grimp.ImportGraph) -> None:
    illegal = graph.find_illegal_dependencies_for_layers(
        layers=[grimp.Layer(*layer) for layer in LAYERS], containers={PACKAGE}
    )
    lines = []
    for dependency in sorted(illegal, key=lambda d: (d.importer, d.imported)):
        lines.append(f"{dependency.importer} must not import {dependency.imported}:")
        lines += _chains(graph, dependency.importer, dependency.imported)
    assert not lines, "\n".join(lines)
