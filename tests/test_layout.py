"""The layout's promises (README "Layout"): what a newcomer relies on to find their way.

The import rule itself is checked by import-linter (`lint-imports`, contracts in
pyproject.toml), run by `make test`; these tests check what it cannot.
"""
from __future__ import annotations

import ast
import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("bot", "connectors", "actions", "bench", "deploy")


def _modules():
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            if "migrations/versions" in path.as_posix():
                continue
            yield path, ".".join(path.relative_to(ROOT).with_suffix("").parts)


def _private_uses(source: str, module: str):
    """Names starting with one underscore taken from another package's module."""
    package = module.rsplit(".", 1)[0]
    tree = ast.parse(source)
    aliases = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            foreign = node.module.rsplit(".", 1)[0] != package and node.module != package
            for name in node.names:
                if foreign and name.name.startswith("_") and not name.name.startswith("__"):
                    yield f"from {node.module} import {name.name}"
                if node.module.split(".")[0] in PACKAGES:
                    aliases[name.asname or name.name] = f"{node.module}.{name.name}"
        elif isinstance(node, ast.Import):
            for name in node.names:
                if name.name.split(".")[0] in PACKAGES:
                    aliases[name.asname or name.name] = name.name
    for node in ast.walk(tree):
        if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name)
                and node.value.id in aliases and node.attr.startswith("_")
                and not node.attr.startswith("__")):
            target = aliases[node.value.id]
            if target.rsplit(".", 1)[0] != package and target != package:
                yield f"{node.value.id}.{node.attr} ({target})"


def test_the_private_name_check_finds_what_it_should():
    bad = "from bot.store.tickets import _view\nfrom bot.gateway import launch\nlaunch._redacted_copy()\n"
    assert len(list(_private_uses(bad, "deploy.scaled"))) == 2
    same_package = "from bot.store.engine import _sqlite_pragmas\n"
    assert list(_private_uses(same_package, "bot.store.tickets")) == []


def test_no_module_uses_another_packages_private_names():
    found = [f"{module}: {use}" for path, module in _modules()
             for use in _private_uses(path.read_text(encoding="utf-8"), module)]
    assert found == []


def test_bot_holds_few_top_level_modules_and_no_module_is_over_500_lines():
    assert len(list((ROOT / "bot").glob("*.py"))) <= 8
    long = [f"{path.relative_to(ROOT)}: {n}" for path, _ in _modules()
            if path.parts[len(ROOT.parts)] in ("bot", "connectors")
            and (n := len(path.read_text(encoding="utf-8").splitlines())) > 500]
    assert long == []


def test_every_package_says_what_it_owns():
    for init in sorted((ROOT / "bot").rglob("__init__.py")) + [ROOT / "connectors" / "__init__.py"]:
        if "migrations" in init.parts:
            continue
        doc = ast.get_docstring(ast.parse(init.read_text(encoding="utf-8")))
        assert doc and len(doc) > 30, f"{init.relative_to(ROOT)} needs a docstring saying what it owns"


@pytest.mark.parametrize("component", sorted(
    p.name for p in (ROOT / "bot" / "brain" / "components").glob("*.py") if p.name != "__init__.py"))
def test_editing_any_rasa_component_changes_the_model_cache_key(tmp_path, component):
    from bot.training.model_cache import INPUTS, data_hash

    copy = tmp_path / "project"
    for entry in INPUTS:
        src, dst = ROOT / entry, copy / entry
        dst.parent.mkdir(parents=True, exist_ok=True)
        if src.is_dir():
            shutil.copytree(src, dst, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy(src, dst)
    before = data_hash(copy)
    target = copy / "bot" / "brain" / "components" / component
    target.write_text(target.read_text(encoding="utf-8") + "\n# edited\n", encoding="utf-8")
    assert data_hash(copy) != before


def test_the_code_a_rasa_component_imports_is_an_input_of_the_model_cache_key():
    """A component's own imports from bot/ (the normaliser's homophone respelling, the location
    extractor's address grammar) shape what a model learns: editing them must retrain it."""
    from bot.training.model_cache import SHARED_INPUTS

    imported = set()
    for path in (ROOT / "bot" / "brain" / "components").glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("bot."):
                for alias in node.names:
                    module = f"{node.module}.{alias.name}"
                    imported.add(module if (ROOT / (module.replace(".", "/") + ".py")).exists() else node.module)
    files = {m.replace(".", "/") + ".py" for m in imported}
    files = {f for f in files if (ROOT / f).exists()}
    assert files, "the scan found no imports: it reads nothing"
    outside = sorted(f for f in files if not any(f == e or f.startswith(e + "/") for e in SHARED_INPUTS))
    assert outside == [], f"imported by a Rasa component but not in the model's cache key: {outside}"
