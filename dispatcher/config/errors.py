"""Configuration errors in the operator's terms: dotted key, what is wrong, where it came from.

pydantic reports "Extra inputs are not permitted" at a location tuple; an operator needs
``tracking.polll_schedule_s: unknown key ... (did you mean 'poll_schedule_s'?); from
/etc/dispatcher.toml``. Everything here is generic over the settings model (walked by its
annotations) and pure over a ``Sources`` snapshot, so it is unit-tested without files.
"""

from __future__ import annotations

import difflib
import json
import re
import types
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Annotated, Any, Literal, Union, get_args, get_origin

from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from dispatcher.logs import is_secret_key, safe_url

Loc = Sequence[str | int]
_MISSING: Any = object()
_MAX_SHOWN = 40


@dataclass(frozen=True)
class Sources:
    """Where values can come from, highest precedence last in this list: file, env, arguments."""

    toml_path: str
    toml: Mapping[str, Any]
    environ: Mapping[str, str]
    overrides: Mapping[str, Any]
    env_prefix: str = "DISPATCHER_"
    env_delimiter: str = "__"

    def env_name(self, path: Sequence[str]) -> str | None:
        """The variable (as spelled in the environment) that sets exactly ``path``."""
        want = (self.env_prefix + self.env_delimiter.join(path)).lower()
        return next((k for k in self.environ if k.lower() == want), None)

    def env_under(self, path: Sequence[str]) -> list[str]:
        """Variables that set keys inside the table at ``path``."""
        head = (self.env_prefix + self.env_delimiter.join(path) + self.env_delimiter).lower()
        if not path:
            head = self.env_prefix.lower()
        return sorted(k for k in self.environ if k.lower().startswith(head))


def _dig(data: Mapping[str, Any], path: Sequence[str]) -> Any:
    node: Any = data
    for seg in path:
        if not isinstance(node, Mapping):
            return _MISSING
        hit = [k for k in node if str(k).lower() == seg.lower()]
        if not hit:
            return _MISSING
        node = node[hit[0]]
    return node


def describe_source(loc: Loc, src: Sources, table: bool = False) -> str:
    """Where the value at ``loc`` came from; for a table, every contributor."""
    path = [str(p) for p in loc if not isinstance(p, int)]
    if _dig(src.overrides, path) is not _MISSING:
        return "from load_settings() arguments"
    own = next((n for i in range(len(path), 0, -1) if (n := src.env_name(path[:i]))), None)
    if own and not table:
        return f"from environment variable {own}"
    names = ([own] if own else []) + ([n for n in src.env_under(path) if n != own]
                                       if table else [])
    parts = []
    if names:
        noun = "environment variable" + ("s" if len(names) > 1 else "")
        parts.append(f"{noun} {', '.join(names)}")
    if _dig(src.toml, path) is not _MISSING:
        parts.append(src.toml_path)
    return "from " + " and ".join(parts) if parts else "default value"


# -- walking the model by its annotations --------------------------------------------------
def _unwrap(tp: Any) -> Any:
    while True:
        origin = get_origin(tp)
        if origin is Annotated:
            tp = get_args(tp)[0]
        elif origin in (Union, types.UnionType):
            args = [a for a in get_args(tp) if a is not type(None)]
            if len(args) != 1:
                return tp
            tp = args[0]
        else:
            return tp


def _is_model(tp: Any) -> bool:
    return isinstance(tp, type) and issubclass(tp, BaseModel)


def annotation_at(model: type[BaseModel], loc: Loc) -> Any:
    """The declared type at ``loc`` (dict keys and list indexes descend), or a sentinel."""
    tp: Any = model
    for seg in loc:
        tp = _unwrap(tp)
        if get_origin(tp) in (Union, types.UnionType) and seg != "kind":
            # a tagged union: every member has the key, or the error would name the tag
            members = [_unwrap(m) for m in get_args(tp) if _is_model(_unwrap(m))]
            tp = next((m for m in members if str(seg) in m.model_fields), tp)
        origin = get_origin(tp)
        if _is_model(tp):
            field = tp.model_fields.get(str(seg))
            if field is None:
                return _MISSING
            tp = field.annotation
        elif origin in (dict, Mapping) and len(get_args(tp)) == 2:
            tp = get_args(tp)[1]
        elif origin in (list, set, frozenset, tuple, Sequence) and get_args(tp):
            tp = get_args(tp)[0]
        else:
            return _MISSING
    return _unwrap(tp)


def _tagged_member(tp: Any, tag: Any) -> Any:
    """The member of a tagged union of models whose ``kind`` literal is ``tag`` (or None)."""
    if get_origin(tp) not in (Union, types.UnionType):
        return None
    for member in get_args(tp):
        member = _unwrap(member)
        if _is_model(member):
            field = member.model_fields.get("kind")
            if field is not None and tag in get_args(field.annotation):
                return member
    return None


def normal_loc(model: type[BaseModel], loc: Loc) -> Loc:
    """pydantic puts a tagged union's tag into the location (``providers.x.telecho.url``):
    take it out, so keys read as the operator writes them."""
    out: list[Any] = []
    tp: Any = model
    for seg in loc:
        tp = _unwrap(tp)
        member = _tagged_member(tp, seg)
        if member is not None:
            tp = member
            continue
        out.append(seg)
        origin = get_origin(tp)
        if _is_model(tp):
            field = tp.model_fields.get(str(seg))
            tp = field.annotation if field is not None else None
        elif origin in (dict, Mapping) and len(get_args(tp)) == 2:
            tp = get_args(tp)[1]
        elif origin in (list, set, frozenset, tuple, Sequence) and get_args(tp):
            tp = get_args(tp)[0]
        else:
            tp = None
    return tuple(out)


def _is_complex(tp: Any) -> bool:
    if get_origin(tp) in (Union, types.UnionType):
        return any(_is_complex(_unwrap(a)) for a in get_args(tp))
    return _is_model(tp) or get_origin(tp) in (list, dict, set, frozenset, tuple, Mapping)


def dotted(loc: Loc) -> str:
    """('tracking', 'poll_schedule_s', 1) -> 'tracking.poll_schedule_s[1]'."""
    out = ""
    for seg in loc:
        out += f"[{seg}]" if isinstance(seg, int) else (f".{seg}" if out else str(seg))
    return out or "(top level)"


# -- one error, in words ---------------------------------------------------------------------
_EXPECT = {
    "int_parsing": "expected a whole number", "int_type": "expected a whole number",
    "int_from_float": "expected a whole number", "float_parsing": "expected a number",
    "float_type": "expected a number", "bool_parsing": "expected true or false",
    "bool_type": "expected true or false", "string_type": "expected a string",
    "list_type": "expected a list", "tuple_type": "expected a list", "set_type": "expected a list",
    "dict_type": "expected a table", "model_type": "expected a table",
    "model_attributes_type": "expected a table", "none_required": "expected no value",
}
_BOUNDS = {"greater_than": ("more than", "gt"), "greater_than_equal": ("at least", "ge"),
           "less_than": ("less than", "lt"), "less_than_equal": ("at most", "le"),
           "multiple_of": ("a multiple of", "multiple_of")}
_PYDANTIC_PREFIXES = ("Value error, ", "Assertion failed, ")


def _choices(model: type[BaseModel], loc: Loc, ctx: Mapping[str, Any]) -> str:
    tp = annotation_at(model, loc)
    if get_origin(tp) is Literal:
        return ", ".join(repr(a) for a in get_args(tp))
    return str(ctx.get("expected", "")).replace(" or ", ", ")


def _unknown_key(model: type[BaseModel], loc: Loc) -> str:
    key, parent = str(loc[-1]), loc[:-1]
    owner = annotation_at(model, parent) if parent else model
    where = f" in [{dotted(parent)}]" if parent else ""
    fields = list(owner.model_fields) if _is_model(owner) else []
    close = difflib.get_close_matches(key, fields, n=1)
    hint = f" (did you mean '{close[0]}'?)" if close else ""
    return f"unknown key '{key}'{where}{hint}"


def _structural(kind: str, loc: Loc, ctx: Mapping[str, Any], model: type[BaseModel],
                value: str | None) -> str | None:
    """Problems about keys (unknown, missing) and kinds, rather than values."""
    if kind == "extra_forbidden":
        return _unknown_key(model, loc)
    if kind in ("missing", "union_tag_not_found"):
        parent = f" from [{dotted(loc[:-1])}]" if len(loc) > 1 else ""
        return f"required key is missing{parent}"
    if kind == "union_tag_invalid":
        noun = f"{str(loc[-3]).rstrip('s')} " if len(loc) >= 3 else ""
        return (f"unknown {noun}kind {ctx.get('tag')!r} "
                f"(valid kinds: {ctx.get('expected_tags')})")
    if kind in ("literal_error", "enum") and loc and loc[-1] == "kind":
        noun = f"{str(loc[-3]).rstrip('s')} " if len(loc) >= 3 else ""
        shown = f" {value}" if value is not None else ""
        return f"unknown {noun}kind{shown} (valid kinds: {_choices(model, loc, ctx)})"
    return None


def _problem(err: ErrorDetails, model: type[BaseModel], value: str | None) -> str:
    kind, loc, ctx = err["type"], err["loc"], err.get("ctx", {})
    got = f", got {value}" if value is not None else ""
    structural = _structural(kind, loc, ctx, model, value)
    if structural is not None:
        return structural
    if kind in ("literal_error", "enum"):
        return f"expected one of {_choices(model, loc, ctx)}{got}"
    if kind in _BOUNDS:
        words, name = _BOUNDS[kind]
        return f"must be {words} {ctx.get(name)}{got}"
    if kind == "string_pattern_mismatch":
        return f"must match the pattern {ctx.get('pattern')}{got}"
    if kind in _EXPECT:
        return _EXPECT[kind] + got
    msg = err["msg"]
    for prefix in _PYDANTIC_PREFIXES:
        msg = msg.removeprefix(prefix)
    return msg.replace("Input should be", "expected").replace("Input", "value") + got


def shown_value(loc: Loc, value: Any) -> str | None:
    """The bad value, quoted, when short and not under a secret-sounding key."""
    names = [p for p in loc if isinstance(p, str)]
    if any(is_secret_key(p) for p in names) or (names and "key" in names[-1].lower()):
        return None
    if isinstance(value, str):
        text = repr(safe_url(value) if "://" in value else value)
    elif value is None or isinstance(value, bool | int | float | list):
        try:
            text = json.dumps(value)
        except (TypeError, ValueError):
            return None
    else:
        return None
    return text if len(text) <= _MAX_SHOWN else None


def format_error(err: ErrorDetails, model: type[BaseModel], src: Sources) -> str:
    """One line: ``key: problem, got value; from source``."""
    loc = normal_loc(model, err["loc"])
    if err["type"] in ("union_tag_invalid", "union_tag_not_found"):
        loc = (*loc, "kind")  # the tag names the table; the bad key is its kind
    err = {**err, "loc": loc}  # type: ignore[typeddict-item]
    loc, kind = err["loc"], err["type"]
    quiet = kind in ("extra_forbidden", "missing", "union_tag_not_found")
    problem = _problem(err, model, None if quiet else shown_value(loc, err["input"]))
    if kind in ("missing", "union_tag_not_found"):
        source = describe_source(loc[:-1], src, table=True)
    else:
        source = describe_source(loc, src, table=isinstance(err["input"], Mapping))
    return f"{dotted(loc)}: {problem}; {source}"


def format_errors(exc: ValidationError, model: type[BaseModel], src: Sources) -> str:
    lines = list(dict.fromkeys(format_error(e, model, src) for e in exc.errors()))
    return "invalid configuration:\n  " + "\n  ".join(lines)


# -- values from the environment that are not even JSON ----------------------------------------
_FIELD_RE = re.compile(r'field "([^"]+)"')


def format_env_parse_error(message: str, model: type[BaseModel], src: Sources) -> str:
    """pydantic-settings' "error parsing value for field" names no variable; find it."""
    match = _FIELD_RE.search(message)
    field = match.group(1) if match else ""
    lines = []
    for name in src.env_under([field]) + [n for n in [src.env_name([field])] if n]:
        path = name[len(src.env_prefix):].lower().split(src.env_delimiter)
        if not _is_complex(annotation_at(model, path)):
            continue
        raw = src.environ[name]
        try:
            json.loads(raw)
        except ValueError:
            value = shown_value(path, raw) or "the value"
            lines.append(f"{dotted(path)}: cannot parse {value} as JSON (lists and tables set "
                         f"from the environment are JSON, e.g. [5, 10]); "
                         f"from environment variable {name}")
    if not lines:
        lines = [f"{field or '(top level)'}: {message}; "
                 f"{describe_source([field] if field else [], src, table=True)}"]
    return "invalid configuration:\n  " + "\n  ".join(lines)
