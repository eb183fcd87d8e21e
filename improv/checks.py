"""Type checks for settings dataclasses: bools are bools, ints are ints, floats finite.

A value of the wrong type used to pass and break the live loop later (measured:
``velocity = 64.5`` killed the scheduler thread, ``top_k = 2.5`` crashed the
first answer, ``passthrough = "false"`` turned passthrough on, ``gap = inf``
killed the scheduler). Every settings dataclass calls :func:`check_types` first
in ``__post_init__``; TOML files and flags go through the same classes.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import numbers
import types
import typing

from improv.errors import InvalidValueError


def is_number(value) -> bool:
    """Whether ``value`` is a finite int or float (not a bool): what a JSON file's number
    must be to be taken."""
    return (isinstance(value, (int, float)) and not isinstance(value, bool)
            and math.isfinite(value))


def is_history(value) -> bool:
    """Whether ``value`` is a training history as JSON holds it: a dict of lists of numbers
    (not bools; NaN and inf taken: an epoch that diverged), one list a metric."""
    return isinstance(value, dict) and all(
        isinstance(v, list) and all(isinstance(x, (int, float)) and not isinstance(x, bool)
                                    for x in v)
        for v in value.values())


def _describe(value) -> str:
    return f"{value!r} ({type(value).__name__})"


def check_value(where: str, hint, value) -> None:
    """Raise ValueError unless ``value`` fits the type hint ``hint``."""
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        for option in typing.get_args(hint):
            try:
                check_value(where, option, value)
                return
            except ValueError:
                pass
        names = " or ".join(_name(a) for a in typing.get_args(hint))
        raise InvalidValueError(f"{where} must be {names}, got {_describe(value)}")
    if hint is type(None):
        if value is not None:
            raise InvalidValueError(f"{where} must be empty, got {_describe(value)}")
    elif hint is bool:
        if not isinstance(value, bool):
            raise InvalidValueError(f"{where} must be true or false, got {_describe(value)}")
    elif hint is int:  # NumPy's ints too
        if not isinstance(value, numbers.Integral) or isinstance(value, bool):
            raise InvalidValueError(f"{where} must be a whole number, got {_describe(value)}")
    elif hint is float:  # ints, and NumPy's numbers too
        if not isinstance(value, numbers.Real) or isinstance(value, bool):
            raise InvalidValueError(f"{where} must be a number, got {_describe(value)}")
        if not math.isfinite(value):
            raise InvalidValueError(f"{where} must be a finite number, got {value!r}")
    elif hint is str:
        if not isinstance(value, str):
            raise InvalidValueError(f"{where} must be a string, got {_describe(value)}")
    elif origin is tuple:
        args = typing.get_args(hint)
        if not isinstance(value, (tuple, list)) or len(value) != len(args):
            raise InvalidValueError(f"{where} must be a list of {len(args)}, "
                                    f"got {_describe(value)}")
        for i, (arg, item) in enumerate(zip(args, value, strict=True)):
            check_value(f"{where}[{i}]", arg, item)
    elif hint is dict or origin is dict:
        if not isinstance(value, dict):
            raise InvalidValueError(f"{where} must be a table, got {_describe(value)}")
        for key, item in value.items():
            if not isinstance(key, str) or not isinstance(item, (str, int, float, bool)):
                raise InvalidValueError(f"{where}: {key!r} = {item!r}: keys must be strings "
                                        "and values strings, numbers or booleans")
            if isinstance(item, float) and not math.isfinite(item):
                raise InvalidValueError(f"{where}.{key} must be a finite number, got {item!r}")


def _name(hint) -> str:
    return {bool: "true or false", int: "a whole number", float: "a number", str: "a string",
            type(None): "empty"}.get(hint, getattr(hint, "__name__", str(hint)))


def check_types(obj, prefix: str = "") -> None:
    """Check every field of the dataclass ``obj`` against its annotation."""
    hints = _hints(type(obj))
    for f in dataclasses.fields(obj):
        hint = hints.get(f.name)
        if hint is None or dataclasses.is_dataclass(hint):
            continue
        check_value(f"{prefix}{f.name}", hint, getattr(obj, f.name))


@functools.lru_cache(maxsize=None)
def _hints(cls) -> dict:
    # once a class: typing.get_type_hints took ~100 us, and a temperature CC builds a new
    # SamplingConfig for every message of a knob's sweep
    return typing.get_type_hints(cls)


def check_range(where: str, value: float, low: float, high: float) -> None:
    """Raise ValueError unless ``low <= value <= high``."""
    if not low <= value <= high:
        raise InvalidValueError(f"{where} must be {low:g}-{high:g}, got {value!r}")
