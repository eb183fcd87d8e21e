"""Settings fields that are also command-line flags: the help lives with the field.

A field made with :func:`flag` carries its flag's help (and any argparse options: ``choices``,
``metavar``, ``names``...) in its metadata. :func:`add_fields` adds a flag for each such field
of a settings dataclass (``--seq-length`` for ``seq_length``), typed by the field's annotation
(a ``bool`` is ``--x`` / ``--no-x``), its default in the help, and None when not given, so a
flag replaces a config file's value only when it is given; :func:`given_fields` reads them
back. A new setting is then one edit, its field: the config file key, the check in
``__post_init__`` and the flag all follow from it.
"""

from __future__ import annotations

import argparse
import dataclasses
import types
import typing

#: Metadata keys of :func:`flag` that are not argparse options.
_OWN = ("flag", "names")


def flag(default=dataclasses.MISSING, help: str | None = None, *,
         default_factory=dataclasses.MISSING, **argparse_options):
    """A dataclass field that is also a flag, with its help (``None``: no help text) and
    argparse options; ``names`` replaces the flag's names (``("--input", "-i")``)."""
    return dataclasses.field(default=default, default_factory=default_factory,
                             metadata={"flag": help, **argparse_options})


def _kind(hint):
    """The argparse type of a field's annotation (``int | None`` -> int)."""
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        return next(a for a in typing.get_args(hint) if a is not type(None))
    return hint


def _help(text: str | None, default) -> str | None:
    """The help with the field's default, unless the help says it or it says nothing."""
    if text is None or "default" in text or default in ("", None, dataclasses.MISSING):
        return text
    if isinstance(default, bool):
        return f"{text} (default: {'on' if default else 'off'})"
    return f"{text} (default {default:g})" if isinstance(default, float) else \
        f"{text} (default {default})"


def add_fields(parser, cls, defaults: bool = True, only=None) -> list[str]:
    """Add a flag for each field of the dataclass ``cls`` made with :func:`flag` (of the
    names in ``only``, if given); return the fields' names (the flags' ``dest``), for
    :func:`given_fields`. ``defaults``: say the fields' defaults in the help (not where a
    preset replaces them)."""
    hints = typing.get_type_hints(cls)
    added = []
    for f in dataclasses.fields(cls):
        if "flag" not in f.metadata or (only is not None and f.name not in only):
            continue
        options = {k: v for k, v in f.metadata.items() if k not in _OWN}
        kind = _kind(hints[f.name])
        if "action" not in options and "choices" not in options:
            if kind is bool:
                options["action"] = argparse.BooleanOptionalAction
            else:
                options["type"] = kind
        names = f.metadata.get("names") or (f"--{f.name.replace('_', '-')}",)
        parser.add_argument(*names, dest=f.name, default=None,
                            help=_help(f.metadata["flag"], f.default if defaults else None),
                            **options)
        added.append(f.name)
    return added


def given_fields(args, names) -> dict:
    """The values of the flags :func:`add_fields` added that were given."""
    return {k: getattr(args, k) for k in names if getattr(args, k) is not None}
