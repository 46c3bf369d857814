"""Render the configuration reference (docs/configuration.md) from the config models themselves.

The models are the single source of truth: every key's type, default and description come from
its pydantic field, so the reference cannot drift (a test compares the file with this output).
"""

from __future__ import annotations

import types
import typing
from collections.abc import Iterator, Mapping
from pathlib import PurePath
from typing import Any

from pydantic import BaseModel
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

from gateway.config import GatewayConfig, ProviderSettings, SecretRef

__all__ = ["render_model", "render_reference"]

_HEADER = """# Configuration reference

fedgate reads one YAML file (`fedgate serve --config FILE`; `fedgate check-config --config FILE`
validates it). Unknown keys are errors. Secrets are given by reference: `{env: NAME}` or
`{file: PATH}` (`{value: ...}` only for tests); `{file: PATH, create: true}` makes the file, with a
random secret (48 bytes, URL-safe base64, mode 0600), the first time it is read and missing: a
secret that outlives restarts on one host, as the demo's key ring and cookie secret do (replicas
that must share a secret are given it). This file is generated from the configuration models by
`fedgate config-reference`; do not edit it by hand.
"""


def _type_name(annotation: Any) -> str:
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin is typing.Annotated:  # validators attached to a type do not change what users write
        return _type_name(args[0])
    if origin in (typing.Union, types.UnionType):
        return " | ".join(_type_name(a) for a in args)
    if origin is typing.Literal:
        return " | ".join(repr(a) for a in args)
    if origin in (list, tuple, set):
        return f"list of {_type_name(args[0])}" if args else "list"
    if origin in (dict, Mapping):
        return f"mapping of {_type_name(args[1])}" if len(args) == 2 else "mapping"
    if annotation is type(None):
        return "null"
    if isinstance(annotation, type):
        return {"str": "string", "int": "integer", "float": "number", "bool": "boolean"}.get(
            annotation.__name__, annotation.__name__
        )
    return str(annotation)


def _default(field: FieldInfo) -> str:
    if field.default is PydanticUndefined and field.default_factory is None:
        return "required"
    value = field.default_factory() if field.default_factory is not None else field.default  # type: ignore[call-arg]
    if isinstance(value, BaseModel):
        return "(section defaults)"
    if value is None:
        return "none"
    return f"`{_plain(value)!r}`"


def _plain(value: Any) -> Any:
    """``value`` as a user writes it in YAML: paths as strings, inside lists and mappings too."""
    if isinstance(value, PurePath):
        return str(value)
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


def _description(field: FieldInfo) -> str:
    """The field's description, else the docstring of the section it holds, else nothing."""
    if field.description:
        return field.description
    for model in _models_in(field.annotation):
        if model.__doc__:
            return model.__doc__
    return ""


def _cell(text: str) -> str:
    """``text`` safe inside a Markdown table cell: one line, ``|`` escaped."""
    return " ".join(text.split()).replace("|", "\\|")


def _models_in(annotation: Any) -> Iterator[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        yield annotation
    for arg in typing.get_args(annotation):
        yield from _models_in(arg)


def _rows(model: type[BaseModel], prefix: str, skip: frozenset[str] = frozenset()) -> Iterator[str]:
    for name, field in model.model_fields.items():
        if name in skip:
            continue
        path = f"{prefix}{name}"
        description = _description(field).strip().split("\n\n")[0]
        cells = (f"`{path}`", _type_name(field.annotation), _default(field), description)
        yield "| " + " | ".join(_cell(c) for c in cells) + " |"
        for sub in _models_in(field.annotation):
            if sub is not ProviderSettings and sub is not SecretRef:
                is_list = typing.get_origin(field.annotation) is list or any(
                    typing.get_origin(a) is list for a in typing.get_args(field.annotation)
                )
                yield from _rows(sub, f"{path}[].") if is_list else _rows(sub, f"{path}.")


def _table(rows: Iterator[str]) -> str:
    return "| key | type | default | description |\n|---|---|---|---|\n" + "\n".join(rows) + "\n"


def render_reference(
    provider_types: Mapping[str, type[ProviderSettings]], sections: Mapping[str, type[BaseModel]]
) -> str:
    """The whole reference as Markdown: core keys, then each provider type and plugin section."""
    out = [_HEADER, "## Core keys\n", _table(_rows(GatewayConfig, "", frozenset({"providers", "sections"})))]
    out.append(
        "## Secret references\n\nWherever a key takes a secret, give exactly one of `env` (an "
        "environment variable's name), `file` (a path; a trailing newline is stripped) or `value` "
        "(inline; tests only). Secrets are resolved at start-up and never logged.\n"
    )
    out.append(
        "## providers\n\n`providers` is a list; each entry's `type` selects the plugin that validates it.\n"
    )
    for kind, provider_model in sorted(provider_types.items()):
        out.append(f"### type: {kind}\n\n{(provider_model.__doc__ or '').strip()}\n")
        out.append(_table(_rows(provider_model, "providers[].")))
    for key, model in sorted(sections.items()):
        out.append(f"## {key}\n\n{(model.__doc__ or '').strip()}\n")
        out.append(_table(_rows(model, f"{key}.")))
    return "\n".join(out)


def render_model(model: type[BaseModel], header: str) -> str:
    """``header`` followed by the table of every key of ``model``, nested models included.

    For configuration files other than the gateway's (``fedgate agent``'s).
    """
    return "\n".join([header, _table(_rows(model, ""))])
