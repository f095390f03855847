"""Which texts of a pack's ``messages.yml`` the actions ask for, read from the code itself.

The actions (``actions/*.py``) say nothing of their own: every text is a call
``pack.say("key", name=value, …)`` (``pack.buttons("key")``, ``pack.labels("key")`` for the
buttons and the names of fields). This module reads those calls out of the source (an AST
scan, nothing is imported or run), so a new key can never be forgotten by a list kept by
hand:

* every call site: its key(s) (a literal, or ``"a" if … else "b"``) and the ``{name}`` values
  it gives;
* what each top-level function or class refers to, across the actions' modules, and each
  Rasa action's name (``name()`` returning a literal, ``self.action`` or
  ``f"validate_{self.form}"``);
* so the keys *a pack runs* are those reachable from the actions its domain lists: the
  property office needs no return-window text, the shop no location hint.

:func:`problems` names each missing key, a key of the wrong shape (a text, a list of buttons,
a mapping) and a ``{name}`` placeholder no call site gives, by file and key.
"""
from __future__ import annotations

import ast
import string
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, FrozenSet, Iterable, List, Optional, Set, Tuple

LOOKUPS = {"say": "text", "buttons": "buttons", "labels": "labels"}
ACTIONS = "actions"
CODE_ROOT = Path(__file__).resolve().parent.parent.parent
Def = Tuple[str, str]                 # (module, top-level name); name "" = the module's own code


class WordingError(ValueError):
    """A lookup the scan cannot read (a key that is not a literal, values passed as ``**``)."""


@dataclass(frozen=True)
class Use:
    key: str
    kind: str                          # text | buttons | labels
    values: FrozenSet[str]             # the {name} values this call gives
    where: str                         # actions/forms.py:123


@dataclass
class Scan:
    uses: Dict[Def, List[Use]]
    refs: Dict[Def, Set[Def]]
    actions: Dict[str, Def]            # Rasa action name -> the class that runs it

    def reachable(self, starts: Iterable[Def]) -> Set[Def]:
        seen: Set[Def] = set()
        todo = list(starts)
        while todo:
            node = todo.pop()
            if node in seen:
                continue
            seen.add(node)
            todo.extend(self.refs.get(node, ()))
            todo.append((node[0], ""))           # a module's own code runs when it is imported
        return seen

    def uses_of(self, action_names: Iterable[str]) -> List[Use]:
        """Every lookup the named actions can make (through what they call)."""
        starts = [self.actions[a] for a in action_names if a in self.actions]
        return [u for d in sorted(self.reachable(starts)) for u in self.uses.get(d, [])]

    def all_uses(self) -> List[Use]:
        return [u for d in sorted(self.uses) for u in self.uses[d]]


def _keys(node: ast.AST, where: str) -> List[str]:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return [node.value]
    if isinstance(node, ast.IfExp):
        return _keys(node.body, where) + _keys(node.orelse, where)
    raise WordingError(f"{where}: a message key must be a literal (or \"a\" if … else \"b\"), "
                       "so make validate can read it")


def _lookup(node: ast.AST) -> Optional[str]:
    """``pack.say(…)`` → ``text`` (the kind of lookup), else None."""
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) \
            and isinstance(node.func.value, ast.Name) and node.func.value.id == "pack":
        return LOOKUPS.get(node.func.attr)
    return None


def _uses(tree: ast.AST, rel: str) -> List[Use]:
    found = []
    for node in ast.walk(tree):
        kind = _lookup(node)
        if kind is None:
            continue
        where = f"{rel}:{node.lineno}"
        if not node.args:
            raise WordingError(f"{where}: pack.{node.func.attr}() without a key")
        if any(k.arg is None for k in node.keywords):
            raise WordingError(f"{where}: pass the values by name, not **, so make validate can read them")
        values = frozenset(k.arg for k in node.keywords)
        found += [Use(key, kind, values, where) for key in _keys(node.args[0], where)]
    return found


def _top_level(tree: ast.Module) -> Dict[str, List[ast.AST]]:
    defs: Dict[str, List[ast.AST]] = {"": []}
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            defs.setdefault(node.name, []).append(node)
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names = [t.id for t in targets if isinstance(t, ast.Name)]
            for name in names or [""]:
                defs.setdefault(name, []).append(node)
        elif not isinstance(node, (ast.Import, ast.ImportFrom)):
            defs[""].append(node)
    return defs


def _imports(tree: ast.Module) -> Dict[str, Def]:
    """``from actions.tickets import CheckTicket`` anywhere in a module: name -> its def."""
    found = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith(ACTIONS + "."):
            for alias in node.names:
                found[alias.asname or alias.name] = (node.module, alias.name)
    return found


def _string(node: ast.AST, attrs) -> Optional[str]:
    """A ``name()`` method's return value: a literal, ``self.x`` or ``f"…{self.x}"``."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "self":
        return attrs(node.attr)
    if isinstance(node, ast.JoinedStr):
        parts = [_string(v.value if isinstance(v, ast.FormattedValue) else v, attrs) for v in node.values]
        return None if None in parts else "".join(parts)
    return None


SERVICE = Path("bot") / "support"         # the gateway's customer-service code: it speaks too


def service_uses(root: Path = CODE_ROOT) -> List[Use]:
    """Every lookup the gateway's customer-service modules make (``bot/support/*.py``: what a
    customer is told while waiting for a person); every pack needs them all."""
    found: List[Use] = []
    for path in sorted((root / SERVICE).glob("*.py")):
        rel = str(path.relative_to(root))
        found += _uses(ast.parse(path.read_text(encoding="utf-8"), str(path)), rel)
    return found


def scan(root: Path = CODE_ROOT) -> Scan:
    """Read every module of ``root/actions`` (default: the actions that run with this code,
    whatever project's pack is checked)."""
    trees: Dict[str, ast.Module] = {}
    for path in sorted((root / ACTIONS).glob("*.py")):
        trees[f"{ACTIONS}.{path.stem}"] = ast.parse(path.read_text(encoding="utf-8"), str(path))
    uses: Dict[Def, List[Use]] = {}
    refs: Dict[Def, Set[Def]] = {}
    classes: Dict[Def, ast.ClassDef] = {}
    for module, tree in trees.items():
        rel = module.replace(".", "/") + ".py"
        defs, imported = _top_level(tree), _imports(tree)
        known = {name: (module, name) for name in defs if name}
        known.update({n: d for n, d in imported.items() if d[0] in trees and n not in known})
        for name, nodes in defs.items():
            here = (module, name)
            for node in nodes:
                uses.setdefault(here, []).extend(_uses(node, rel))
                for sub in ast.walk(node):
                    target = known.get(sub.id) if isinstance(sub, ast.Name) else None
                    if target and target != here:
                        refs.setdefault(here, set()).add(target)
                if isinstance(node, ast.ClassDef):
                    classes[here] = node
    return Scan(uses=uses, refs=refs, actions=_action_names(classes, trees))


def _action_names(classes: Dict[Def, ast.ClassDef], trees) -> Dict[str, Def]:
    def bases(key: Def) -> List[Def]:
        module = key[0]
        imported = _imports(trees[module])
        out = []
        for base in classes[key].bases:
            if isinstance(base, ast.Name):
                target = (module, base.id) if (module, base.id) in classes else imported.get(base.id)
                if target in classes:
                    out.append(target)
        return out

    def lineage(key: Def) -> List[Def]:
        order, todo = [], [key]
        while todo:
            node = todo.pop(0)
            if node not in order:
                order.append(node)
                todo.extend(bases(node))
        return order

    names: Dict[str, Def] = {}
    for key in classes:
        chain = lineage(key)
        attrs: Dict[str, Optional[str]] = {}
        for node in reversed(chain):              # a subclass's value over its base's
            for stmt in classes[node].body:
                if isinstance(stmt, ast.Assign):
                    for target in stmt.targets:
                        if isinstance(target, ast.Name):
                            attrs[target.id] = _string(stmt.value, lambda _: None)
        for node in chain:
            method = next((s for s in classes[node].body if isinstance(s, ast.FunctionDef) and s.name == "name"), None)
            if method is None:
                continue
            returned = next((s.value for s in ast.walk(method) if isinstance(s, ast.Return) and s.value), None)
            value = _string(returned, attrs.get) if returned is not None else None
            if value:
                names[value] = key
            break
    return names


def placeholders(template: str) -> Set[str]:
    """The ``{name}`` values a text wants (not the ``{section[key]}`` facts of the profile)."""
    out = set()
    for _, field, _, _ in string.Formatter().parse(template):
        if field and "[" not in field and "." not in field:
            out.add(field)
    return out


def _shape_problem(kind: str, value: Any) -> Optional[str]:
    if kind == "text" and not isinstance(value, (str, int, float)):
        return "must be a text"
    if kind == "buttons" and not (isinstance(value, list) and all(
            isinstance(b, dict) and "title" in b and "payload" in b for b in value)):
        return "must be a list of buttons ({title, payload})"
    if kind == "labels" and not isinstance(value, dict):
        return "must be a mapping (field: name)"
    return None


def problems(messages: Dict[str, Any], uses: List[Use], file: str) -> List[str]:
    """Each key of ``uses`` missing from ``messages`` (the pack's file ``file``), of the wrong
    shape, or wanting a ``{name}`` value a call site does not give."""
    out: List[str] = []
    by_key: Dict[str, List[Use]] = {}
    for use in uses:
        by_key.setdefault(use.key, []).append(use)
    for key, sites in sorted(by_key.items()):
        if key not in messages:
            out.append(f"{file}: {key}: missing (the actions say it: {sites[0].where})")
            continue
        for kind in sorted({u.kind for u in sites}):
            shape = _shape_problem(kind, messages[key])
            if shape:
                out.append(f"{file}: {key}: {shape} ({sites[0].where})")
        if isinstance(messages[key], str):
            try:
                wanted = placeholders(messages[key])
            except ValueError as exc:
                out.append(f"{file}: {key}: not a template ({exc})")
                continue
            for site in sites:
                for name in sorted(wanted - site.values):
                    out.append(f"{file}: {key}: uses {{{name}}} but {site.where} gives "
                               f"{', '.join(sorted(site.values)) or 'no values'}")
    return out
