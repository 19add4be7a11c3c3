"""The audit-log sink filter, rendered from the Terraform in ``infra/`` exactly as Terraform builds it.

The end-to-end stack hands this text to localcloud's sink evaluator, so the filter that the
tests exercise is the filter that ``terraform apply`` deploys: a typo in a method name or a
broken quote in ``infra/modules/log-routing/main.tf`` fails end to end instead of silently
dropping events in Google Cloud. Nothing here is a copy of the filter or of the method list: the
method list, the self-exclusion list and the expression that joins them are all read from the
``.tf`` files and evaluated.

How: python-hcl2 parses each ``.tf`` file into a Lark tree, and a small evaluator computes the
subset of the Terraform expression language that those files use (strings with interpolation,
lists, objects, ``for`` expressions, conditionals, comparisons and a handful of functions). Any
other construct on the evaluated path raises :class:`UnsupportedTerraform` naming it, so the
evaluator grows with the Terraform rather than guessing.

Public interface::

    sink_filter_from_terraform(infra_dir, *, project_id=LOCAL_PROJECT, example="single-project",
                               variables=None) -> str
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import hcl2
from lark import Token, Tree

from localcloud.identities import PROJECT

# The project id the local stack uses; the example's only variable without a default is project_id,
# and the self-exclusion list is built from it.
LOCAL_PROJECT = PROJECT

# Where the example calls the routing module, and which resource's filter is the deployed one.
_ROUTING_MODULE_CALL = "log_routing"
_SINK_RESOURCES = ("google_logging_project_sink", "google_logging_folder_sink", "google_logging_organization_sink")
_META_ARGUMENTS = frozenset({"source", "version", "providers", "depends_on", "count", "for_each"})


class UnsupportedTerraform(Exception):
    """The Terraform uses a construct this evaluator does not implement (extend it, don't guess)."""


class TerraformError(Exception):
    """The Terraform is wrong for what is asked (a missing variable, attribute or module call)."""


def sink_filter_from_terraform(
    infra_dir: str | Path,
    *,
    project_id: str = LOCAL_PROJECT,
    example: str = "single-project",
    variables: Mapping[str, Any] | None = None,
) -> str:
    """The filter text the sink gets when ``infra/examples/<example>`` is applied.

    ``project_id`` and ``variables`` stand for the example's input variables (``-var``); every
    other variable takes its default from the ``.tf`` files.
    """
    infra = Path(infra_dir)
    root = TerraformDir.load(infra / "examples" / example)
    call = root.module_call(_ROUTING_MODULE_CALL)
    module = TerraformDir.load((root.path / _literal_string(call["source"], "source")).resolve())

    root_scope = root.scope({"project_id": project_id, **dict(variables or {})})
    arguments = {name: expr for name, expr in call.items() if name not in _META_ARGUMENTS}
    module_scope = module.scope_from_call(arguments, root_scope)

    filters = {kind: module_scope.evaluate(module.resource(kind, "sink")["filter"]) for kind in _SINK_RESOURCES}
    distinct = set(filters.values())
    if len(distinct) != 1:
        raise TerraformError(f"the project, folder and organization sinks build different filters: {filters}")
    (text,) = distinct
    if not isinstance(text, str):
        raise TerraformError(f"the sink filter evaluates to {type(text).__name__}, not a string")
    return text


# --- Loading: one Terraform directory ---------------------------------------------------------


@dataclass
class TerraformDir:
    """The parts of one module directory the evaluator needs, as unevaluated expression trees."""

    path: Path
    variable_defaults: dict[str, Tree | None] = field(default_factory=dict)
    locals: dict[str, Tree] = field(default_factory=dict)
    module_calls: dict[str, dict[str, Tree]] = field(default_factory=dict)
    resources: dict[tuple[str, str], dict[str, Tree]] = field(default_factory=dict)

    @classmethod
    def load(cls, path: Path) -> TerraformDir:
        if not path.is_dir():
            raise TerraformError(f"no Terraform directory at {path}")
        found = cls(path=path)
        files = sorted(path.glob("*.tf"))
        if not files:
            raise TerraformError(f"no .tf files in {path}")
        for tf in files:
            tree = hcl2.parses_to_tree(tf.read_text(encoding="utf-8"))
            for block in _blocks(_only(tree.children, "body")):
                found._add_block(block, tf)
        return found

    def _add_block(self, block: _Block, tf: Path) -> None:
        if block.type == "variable" and len(block.labels) == 1:
            self.variable_defaults[block.labels[0]] = block.attributes.get("default")
        elif block.type == "locals":
            for name, expr in block.attributes.items():
                if name in self.locals:
                    raise TerraformError(f"local.{name} is defined twice ({tf})")
                self.locals[name] = expr
        elif block.type == "module" and len(block.labels) == 1:
            self.module_calls[block.labels[0]] = block.attributes
        elif block.type == "resource" and len(block.labels) == 2:
            self.resources[(block.labels[0], block.labels[1])] = block.attributes

    def module_call(self, name: str) -> dict[str, Tree]:
        if name not in self.module_calls:
            raise TerraformError(f'{self.path} has no module "{name}" block')
        return self.module_calls[name]

    def resource(self, kind: str, name: str) -> dict[str, Tree]:
        if (kind, name) not in self.resources:
            raise TerraformError(f'{self.path} has no resource "{kind}" "{name}"')
        return self.resources[(kind, name)]

    def scope(self, given: Mapping[str, Any]) -> Scope:
        """A root module's scope: variables from ``given``, else their defaults."""
        unknown = set(given) - set(self.variable_defaults)
        if unknown:
            raise TerraformError(f"{self.path} declares no variable {sorted(unknown)}")
        scope = Scope(self)
        for name, default in self.variable_defaults.items():
            if name in given:
                scope.variables[name] = _Value(given[name])
            elif default is not None:
                scope.variables[name] = _Lazy(lambda d=default: scope.evaluate(d))
        return scope

    def scope_from_call(self, arguments: Mapping[str, Tree], caller: Scope) -> Scope:
        """A child module's scope: the call's arguments (evaluated by the caller), else defaults."""
        unknown = set(arguments) - set(self.variable_defaults)
        if unknown:
            raise TerraformError(f"{self.path} declares no variable {sorted(unknown)}")
        scope = Scope(self)
        for name, default in self.variable_defaults.items():
            if name in arguments:
                scope.variables[name] = _Lazy(lambda e=arguments[name]: caller.evaluate(e))
            elif default is not None:
                scope.variables[name] = _Lazy(lambda d=default: scope.evaluate(d))
        return scope


@dataclass
class _Block:
    type: str
    labels: list[str]
    attributes: dict[str, Tree]


def _blocks(body: Tree) -> Iterator[_Block]:
    for node in _structural(body.children):
        if node.data != "block":
            continue
        parts = _structural(node.children)
        block_type = _name_of(parts[0])
        labels = [_name_of(p) if p.data != "string" else _literal_string(p, "block label") for p in parts[1:-1]]
        attributes: dict[str, Tree] = {}
        for item in _structural(parts[-1].children):
            if item.data == "attribute":
                name_node, expr = _structural(item.children)
                attributes[_name_of(name_node)] = expr
        yield _Block(block_type, labels, attributes)


# --- Evaluation -------------------------------------------------------------------------------


class _Value:
    def __init__(self, value: Any) -> None:
        self.value = value

    def get(self) -> Any:
        return self.value


class _Lazy:
    """A value computed once, on first use, so unrelated (unrenderable) inputs are never touched."""

    def __init__(self, compute: Callable[[], Any]) -> None:
        self._compute = compute
        self._state = "new"
        self._value: Any = None

    def get(self) -> Any:
        if self._state == "busy":
            raise TerraformError("cycle between Terraform values")
        if self._state == "new":
            self._state = "busy"
            self._value = self._compute()
            self._state = "done"
        return self._value


@dataclass(frozen=True)
class _Namespace:
    """``var`` or ``local``: attribute access looks the name up in the module's scope."""

    kind: str
    scope: Scope

    def attribute(self, name: str) -> Any:
        if self.kind == "var":
            if name not in self.scope.variables:
                raise TerraformError(f"var.{name} has no value (no default, not given) in {self.scope.module.path}")
            return self.scope.variables[name].get()
        if name not in self.scope.locals:
            if name not in self.scope.module.locals:
                raise TerraformError(f"local.{name} is not defined in {self.scope.module.path}")
            expr = self.scope.module.locals[name]
            self.scope.locals[name] = _Lazy(lambda: self.scope.evaluate(expr))
        return self.scope.locals[name].get()


class Scope:
    """The values one module's expressions see: its variables, its locals, loop variables."""

    def __init__(self, module: TerraformDir) -> None:
        self.module = module
        self.variables: dict[str, _Value | _Lazy] = {}
        self.locals: dict[str, _Lazy] = {}

    def evaluate(self, expr: Tree) -> Any:
        return _Evaluator(self, {}).eval(expr)


class _Evaluator:
    def __init__(self, scope: Scope, bindings: Mapping[str, Any]) -> None:
        self.scope = scope
        self.bindings = bindings

    def with_bindings(self, extra: Mapping[str, Any]) -> _Evaluator:
        return _Evaluator(self.scope, {**self.bindings, **extra})

    def eval(self, node: Tree | Token) -> Any:
        if isinstance(node, Token):
            raise UnsupportedTerraform(f"bare token {node.type} {node!r}")
        handler = getattr(self, f"_eval_{node.data}", None)
        if handler is None:
            raise UnsupportedTerraform(f"{node.data} (line {_line(node)})")
        return handler(node)

    # Terms -------------------------------------------------------------------------------
    def _eval_expr_term(self, node: Tree) -> Any:
        parts = _structural(node.children)
        if len(parts) != 1:
            raise UnsupportedTerraform(f"expression term with {len(parts)} parts (line {_line(node)})")
        return self.eval(parts[0])

    def _eval_int_lit(self, node: Tree) -> int:
        return int(str(node.children[0]))

    def _eval_float_lit(self, node: Tree) -> float:
        return float(str(node.children[0]))

    def _eval_literal_value(self, node: Tree) -> Any:
        return {"true": True, "false": False, "null": None}[str(node.children[0])]

    def _eval_string(self, node: Tree) -> str:
        pieces: list[str] = []
        for part in node.children:
            if isinstance(part, Token):
                continue  # the quotes
            (inner,) = part.children
            if isinstance(inner, Token):
                pieces.append(_unescape(inner))
            elif inner.data == "interpolation":
                (value_expr,) = _structural(inner.children)
                pieces.append(_to_template_string(self.eval(value_expr), inner))
            else:
                raise UnsupportedTerraform(f"template directive {inner.data} (line {_line(inner)})")
        return "".join(pieces)

    def _eval_identifier(self, node: Tree) -> Any:
        name = _name_of(node)
        if name in self.bindings:
            return self.bindings[name]
        if name in ("var", "local"):
            return _Namespace(name, self.scope)
        raise UnsupportedTerraform(f"reference to {name!r} (line {_line(node)}): only var, local and loop variables can be rendered offline")

    def _eval_tuple(self, node: Tree) -> list[Any]:
        return [self.eval(item) for item in _structural(node.children)]

    def _eval_object(self, node: Tree) -> dict[str, Any]:
        result: dict[str, Any] = {}
        for elem in _structural(node.children):
            key_node, value_node = _structural(elem.children)
            result[self._object_key(key_node)] = self.eval(value_node)
        return result

    def _object_key(self, key_node: Tree) -> str:
        (inner,) = _structural(key_node.children) or [key_node.children[0]]
        if isinstance(inner, Tree) and inner.data == "expr_term":
            (term,) = _structural(inner.children)
            if isinstance(term, Tree) and term.data == "identifier":
                return _name_of(term)  # a bare word key, not a reference
        if isinstance(inner, Tree) and inner.data == "identifier":
            return _name_of(inner)
        if isinstance(inner, Tree) and inner.data == "keyword":
            return str(inner.children[0])
        key = self.eval(inner)
        if not isinstance(key, str):
            raise TerraformError(f"object key {key!r} is not a string (line {_line(key_node)})")
        return key

    def _eval_get_attr_expr_term(self, node: Tree) -> Any:
        base_node, attr_node = _structural(node.children)
        base = self.eval(base_node)
        (name_node,) = _structural(attr_node.children)
        name = _name_of(name_node)
        if isinstance(base, _Namespace):
            return base.attribute(name)
        if isinstance(base, dict):
            if name not in base:
                raise TerraformError(f"object has no attribute {name!r} (line {_line(node)})")
            return base[name]
        raise TerraformError(f".{name} on a {type(base).__name__} (line {_line(node)})")

    def _eval_index_expr_term(self, node: Tree) -> Any:
        base_node, index_node = _structural(node.children)
        base = self.eval(base_node)
        if index_node.data == "short_index":
            key: Any = int(str(index_node.children[-1]))
        else:
            (key_expr,) = _structural(index_node.children)
            key = self.eval(key_expr)
        try:
            return base[key]
        except (KeyError, IndexError, TypeError) as error:
            raise TerraformError(f"index {key!r} not found (line {_line(node)})") from error

    # Operators ---------------------------------------------------------------------------
    def _eval_conditional(self, node: Tree) -> Any:
        condition, when_true, when_false = _structural(node.children)
        test = self.eval(condition)
        if not isinstance(test, bool):
            raise TerraformError(f"condition is {test!r}, not a bool (line {_line(node)})")
        return self.eval(when_true if test else when_false)

    def _eval_binary_op(self, node: Tree) -> Any:
        left_node, term = _structural(node.children)
        operator_node, right_node = _structural(term.children)
        operator = str(operator_node.children[0])
        left = self.eval(left_node)
        if operator == "&&":
            return bool(left) and bool(self.eval(right_node))
        if operator == "||":
            return bool(left) or bool(self.eval(right_node))
        right = self.eval(right_node)
        operations: dict[str, Callable[[Any, Any], Any]] = {
            "==": lambda a, b: a == b,
            "!=": lambda a, b: a != b,
            "<": lambda a, b: a < b,
            ">": lambda a, b: a > b,
            "<=": lambda a, b: a <= b,
            ">=": lambda a, b: a >= b,
            "+": lambda a, b: a + b,
            "-": lambda a, b: a - b,
            "*": lambda a, b: a * b,
        }
        if operator not in operations:
            raise UnsupportedTerraform(f"operator {operator} (line {_line(node)})")
        return operations[operator](left, right)

    def _eval_unary_op(self, node: Tree) -> Any:
        operator, operand = node.children
        value = self.eval(operand)
        return (not value) if str(operator) == "!" else -value

    # for expressions ---------------------------------------------------------------------
    def _iterations(self, intro: Tree) -> Iterator[dict[str, Any]]:
        names = [_name_of(n) for n in _structural(intro.children) if n.data == "identifier"]
        (collection_node,) = [n for n in _structural(intro.children) if n.data != "identifier"]
        collection = self.eval(collection_node)
        if isinstance(collection, dict):
            pairs = sorted(collection.items())  # Terraform iterates maps in lexical key order
        elif isinstance(collection, list):
            pairs = list(enumerate(collection))
        else:
            raise TerraformError(f"for over a {type(collection).__name__} (line {_line(intro)})")
        for key, value in pairs:
            yield {names[0]: value} if len(names) == 1 else {names[0]: key, names[1]: value}

    def _for_parts(self, node: Tree) -> tuple[Tree, list[Tree], Tree | None]:
        parts = _structural(node.children)
        intro = parts[0]
        condition = parts[-1] if parts[-1].data == "for_cond" else None
        body = parts[1:-1] if condition is not None else parts[1:]
        if any(isinstance(c, Token) and c.type == "ELLIPSIS" for c in node.children):
            raise UnsupportedTerraform(f"grouping for expression (...) (line {_line(node)})")
        return intro, body, condition

    def _keep(self, inner: _Evaluator, condition: Tree | None) -> bool:
        if condition is None:
            return True
        (test,) = _structural(condition.children)
        return bool(inner.eval(test))

    def _eval_for_tuple_expr(self, node: Tree) -> list[Any]:
        intro, (value_expr,), condition = self._for_parts(node)
        result = []
        for bindings in self._iterations(intro):
            inner = self.with_bindings(bindings)
            if self._keep(inner, condition):
                result.append(inner.eval(value_expr))
        return result

    def _eval_for_object_expr(self, node: Tree) -> dict[str, Any]:
        intro, (key_expr, value_expr), condition = self._for_parts(node)
        result: dict[str, Any] = {}
        for bindings in self._iterations(intro):
            inner = self.with_bindings(bindings)
            if self._keep(inner, condition):
                result[inner.eval(key_expr)] = inner.eval(value_expr)
        return result

    # Functions ---------------------------------------------------------------------------
    def _eval_function_call(self, node: Tree) -> Any:
        parts = _structural(node.children)
        name = _name_of(parts[0])
        if any(isinstance(c, Token) and c.type == "COLONS" for c in node.children):
            raise UnsupportedTerraform(f"provider function {name} (line {_line(node)})")
        arguments = parts[1] if len(parts) > 1 else None
        if arguments is not None and any(isinstance(c, Token) and c.type == "ELLIPSIS" for c in arguments.children):
            raise UnsupportedTerraform(f"argument expansion in {name}(...) (line {_line(node)})")
        values = [self.eval(a) for a in _structural(arguments.children)] if arguments is not None else []
        if name not in _FUNCTIONS:
            raise UnsupportedTerraform(f"function {name}() (line {_line(node)})")
        return _FUNCTIONS[name](*values)


def _one(values: list[Any]) -> Any:
    if len(values) > 1:
        raise TerraformError(f"one() of {len(values)} elements")
    return values[0] if values else None


def _coalesce(*values: Any) -> Any:
    for value in values:
        if value is not None and value != "":
            return value
    raise TerraformError("coalesce(): no non-null, non-empty argument")


# The Terraform functions the evaluated files use, with Terraform's semantics for these types.
_FUNCTIONS: dict[str, Callable[..., Any]] = {
    "join": lambda sep, items: sep.join(_to_template_string(i, None) for i in items),
    "concat": lambda *lists: [item for items in lists for item in items],
    "length": lambda value: len(value),
    "sort": lambda items: sorted(items),
    "keys": lambda mapping: sorted(mapping),
    "values": lambda mapping: [mapping[k] for k in sorted(mapping)],
    "compact": lambda items: [i for i in items if i not in (None, "")],
    "distinct": lambda items: list(dict.fromkeys(items)),
    "toset": lambda items: sorted(set(items)),
    "tolist": lambda items: list(items),
    "contains": lambda items, value: value in items,
    "lower": lambda s: s.lower(),
    "upper": lambda s: s.upper(),
    "trimspace": lambda s: s.strip(),
    "replace": lambda s, old, new: _replace(s, old, new),
    "merge": lambda *maps: {k: v for m in maps for k, v in m.items()},
    "lookup": lambda mapping, key, default=None: mapping.get(key, default),
    "coalesce": _coalesce,
    "one": _one,
}


def _replace(text: str, old: str, new: str) -> str:
    if len(old) > 1 and old.startswith("/") and old.endswith("/"):
        raise UnsupportedTerraform("replace() with a regular expression")
    return text.replace(old, new)


# --- Tree helpers -----------------------------------------------------------------------------


def _structural(children: list[Any]) -> list[Tree]:
    """Child trees that carry meaning: no punctuation tokens, no newlines or comments."""
    return [c for c in children if isinstance(c, Tree) and c.data != "new_line_or_comment"]


def _only(children: list[Any], data: str) -> Tree:
    (found,) = [c for c in children if isinstance(c, Tree) and c.data == data]
    return found


def _name_of(node: Tree) -> str:
    if node.data in ("identifier", "keyword"):
        return str(node.children[0])
    if node.data == "expr_term":
        (inner,) = _structural(node.children)
        return _name_of(inner)
    raise UnsupportedTerraform(f"expected a name, found {node.data} (line {_line(node)})")


def _literal_string(node: Tree, what: str) -> str:
    """A string literal with no interpolation (a module source, a block label)."""
    target = node
    while target.data == "expr_term":
        (target,) = _structural(target.children)
    if target.data != "string" or any(isinstance(p, Tree) and _structural(p.children) for p in target.children):
        raise TerraformError(f"{what} must be a plain string literal (line {_line(node)})")
    return "".join(_unescape(p.children[0]) for p in target.children if isinstance(p, Tree))


def _line(node: Tree) -> int | str:
    meta = getattr(node, "meta", None)
    return getattr(meta, "line", "?") if meta is not None and not getattr(meta, "empty", True) else "?"


_ESCAPES = {"n": "\n", "r": "\r", "t": "\t", '"': '"', "\\": "\\"}
_ESCAPE_RE = re.compile(r"\\(u[0-9a-fA-F]{4}|U[0-9a-fA-F]{8}|.)")


def _unescape(token: Token) -> str:
    text = str(token)
    if token.type == "ESCAPED_INTERPOLATION":
        return text[1:]  # $${x} is a literal ${x}
    if token.type == "ESCAPED_DIRECTIVE":
        return text[1:]  # %%{x} is a literal %{x}

    def one(match: re.Match[str]) -> str:
        code = match.group(1)
        if code[0] in "uU" and len(code) > 1:
            return chr(int(code[1:], 16))
        if code not in _ESCAPES:
            raise TerraformError(f"invalid escape \\{code} in a string")
        return _ESCAPES[code]

    return _ESCAPE_RE.sub(one, text)


def _to_template_string(value: Any, node: Tree | None) -> str:
    """How Terraform turns a value into template text: strings, numbers and bools only."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (str, int, float)):
        return str(value)
    where = f" (line {_line(node)})" if node is not None else ""
    raise TerraformError(f"cannot put a {type(value).__name__} into a string{where}")


def functions_from_terraform(infra_dir: str | Path, *, project_id: str = LOCAL_PROJECT,
                             example: str = "single-project") -> dict[str, Any]:
    """``local.functions`` of ``infra/examples/<example>``, evaluated: each function's service
    account id, trigger and custom-role permissions, as ``terraform apply`` deploys them."""
    root = TerraformDir.load(Path(infra_dir) / "examples" / example)
    if "functions" not in root.locals:
        raise TerraformError(f"{root.path} defines no local.functions")
    functions = root.scope({"project_id": project_id}).evaluate(root.locals["functions"])
    if not isinstance(functions, dict):
        raise TerraformError(f"local.functions evaluates to {type(functions).__name__}, not an object")
    return functions
