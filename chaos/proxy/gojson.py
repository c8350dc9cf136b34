"""JSON the way Toxiproxy's Go ``encoding/json`` reads and writes it.

Reading: the first JSON value of the body is decoded (trailing bytes are ignored, an
empty body is ``EOF``), keys match struct fields exactly or case-insensitively, unknown
keys are ignored, ``null`` leaves a field alone, and a value of the wrong type is an
error worded as Go words it (``json: cannot unmarshal string into Go struct field
LatencyToxic.attributes.latency of type int64``). Attributes are ``int64``: ``1.5``,
``1e3`` and ``"100"`` are refused.

Writing: compact, keys in the order given, ``<``, ``>``, ``&`` escaped as Go does, and
``float32`` values (toxicity) printed in their shortest form (``0.2``, ``1``).
"""
from __future__ import annotations

import json
import struct
from decimal import Decimal
from typing import Any

INT64_MIN, INT64_MAX = -(2 ** 63), 2 ** 63 - 1


class GoJsonError(ValueError):
    """A body Go's decoder would refuse; ``str(exc)`` is Go's message."""


class Number(str):
    """A JSON number kept as its literal text, so int64 and float32 fields can judge it."""


class Float32(float):
    """A value the encoder prints as Go prints a float32."""


_DECODER = json.JSONDecoder(parse_int=Number, parse_float=Number, parse_constant=None)


def _go_syntax_error(body: str, exc: json.JSONDecodeError) -> str:
    pos = exc.pos
    if pos >= len(body.rstrip()) or exc.msg.startswith("Unterminated string"):
        return "unexpected EOF"
    char = body[pos]
    shown = json.dumps(char)[1:-1] if ord(char) < 0x20 else char
    if exc.msg.startswith("Invalid control character"):
        return f"invalid character '{shown}' in string literal"
    if exc.msg.startswith("Expecting ':'"):
        return f"invalid character '{shown}' after object key"
    if exc.msg.startswith("Expecting property name"):
        return f"invalid character '{shown}' looking for beginning of object key string"
    if exc.msg.startswith("Expecting ','"):
        closer = _innermost_container(body, pos)
        where = "after object key:value pair" if closer == "{" else "after array element"
        return f"invalid character '{shown}' {where}"
    return f"invalid character '{shown}' looking for beginning of value"


def _innermost_container(body: str, pos: int) -> str:
    depth: list[str] = []
    in_string = escaped = False
    for char in body[:pos]:
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "{[":
            depth.append(char)
        elif char in "}]" and depth:
            depth.pop()
    return depth[-1] if depth else ""


def decode(body: bytes) -> Any:
    """The first JSON value of ``body``; raises GoJsonError with Go's wording."""
    try:
        text = body.decode("utf-8", errors="replace")
    except Exception as exc:  # pragma: no cover - replace never fails
        raise GoJsonError("unexpected EOF") from exc
    start = len(text) - len(text.lstrip(" \t\r\n"))
    if start >= len(text):
        raise GoJsonError("EOF")
    try:
        value, _ = _DECODER.raw_decode(text, start)
    except json.JSONDecodeError as exc:
        raise GoJsonError(_go_syntax_error(text, exc)) from exc
    return value


def kind(value: Any) -> str:
    if isinstance(value, dict):
        return "object"
    if isinstance(value, list):
        return "array"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, Number):
        return "number"
    if isinstance(value, str):
        return "string"
    return "null"


def _field_error(value: Any, struct_name: str, path: str, go_type: str, *, literal: bool = False) -> GoJsonError:
    what = kind(value) + (f" {value}" if literal else "")
    return GoJsonError(f"json: cannot unmarshal {what} into Go struct field {struct_name}.{path} of type {go_type}")


def convert(value: Any, go_type: str, struct_name: str, path: str) -> Any:
    """Check one non-null field value against its Go type and convert it."""
    if go_type == "string":
        if isinstance(value, Number) or not isinstance(value, str):
            raise _field_error(value, struct_name, path, go_type)
        return str(value)
    if go_type == "bool":
        if not isinstance(value, bool):
            raise _field_error(value, struct_name, path, go_type)
        return value
    if go_type == "int64":
        if not isinstance(value, Number):
            raise _field_error(value, struct_name, path, go_type)
        try:
            number = int(value)
        except ValueError:
            raise _field_error(value, struct_name, path, go_type, literal=True) from None
        if not INT64_MIN <= number <= INT64_MAX:
            raise _field_error(value, struct_name, path, go_type, literal=True)
        return number
    if go_type == "float32":
        if not isinstance(value, Number):
            raise _field_error(value, struct_name, path, go_type)
        try:
            return Float32(to_float32(float(value)))
        except OverflowError:
            raise _field_error(value, struct_name, path, go_type, literal=True) from None
    raise AssertionError(go_type)


def decode_struct(value: Any, fields: dict[str, str], struct_name: str, go_type: str,
                  prefix: str = "") -> dict[str, Any]:
    """Fields of a JSON object as Go would fill a struct: ``{field: value}`` for keys present.

    ``fields`` maps each JSON field name to its Go type (``string``, ``bool``, ``int64``,
    ``float32`` or ``raw`` to keep the value undecoded). ``null`` sets nothing.
    """
    if value is None:
        return {}
    if not isinstance(value, dict):
        if prefix:
            raise GoJsonError(f"json: cannot unmarshal {kind(value)} into Go struct field "
                              f"{struct_name}.{prefix.rstrip('.')} of type {go_type}")
        raise GoJsonError(f"json: cannot unmarshal {kind(value)} into Go value of type {go_type}")
    folded = {name.casefold(): name for name in fields}
    result: dict[str, Any] = {}
    first_error: GoJsonError | None = None
    for key, item in value.items():
        name = key if key in fields else folded.get(key.casefold())
        if name is None or item is None:
            continue
        if fields[name] == "raw":
            result[name] = item
            continue
        try:
            result[name] = convert(item, fields[name], struct_name, prefix + name)
        except GoJsonError as exc:
            first_error = first_error or exc
    if first_error is not None:
        raise first_error
    return result


def to_float32(value: float) -> float:
    return struct.unpack("<f", struct.pack("<f", value))[0]


def format_float32(value: float) -> str:
    """Go's ``json.Marshal`` of a float32: shortest round-trip digits, 'f' notation."""
    v = to_float32(value)
    if v == 0:
        return "0"
    for precision in range(1, 10):
        text = f"{v:.{precision}g}"
        if to_float32(float(text)) == v:
            break
    if 1e-6 <= abs(v) < 1e21:
        return format(Decimal(text), "f")
    mantissa, _, exponent = f"{Decimal(text):e}".partition("e")
    sign, digits = exponent[0], exponent[1:].zfill(2)
    if sign == "-" and digits.startswith("0"):
        digits = digits[1:]  # Go's encoder turns e-07 into e-7
    return f"{mantissa}e{sign}{digits}"


def _encode_string(text: str) -> str:
    out = json.dumps(text, ensure_ascii=False)
    return (out.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
            .replace("\u2028", "\\u2028").replace("\u2029", "\\u2029"))


def _encode(value: Any, parts: list[str]) -> None:
    if isinstance(value, dict):
        parts.append("{")
        for i, (key, item) in enumerate(value.items()):
            if i:
                parts.append(",")
            parts.append(_encode_string(key))
            parts.append(":")
            _encode(item, parts)
        parts.append("}")
    elif isinstance(value, (list, tuple)):
        parts.append("[")
        for i, item in enumerate(value):
            if i:
                parts.append(",")
            _encode(item, parts)
        parts.append("]")
    elif value is None:
        parts.append("null")
    elif value is True:
        parts.append("true")
    elif value is False:
        parts.append("false")
    elif isinstance(value, Float32):
        parts.append(format_float32(value))
    elif isinstance(value, int):
        parts.append(str(value))
    elif isinstance(value, float):
        parts.append(repr(value))
    else:
        parts.append(_encode_string(str(value)))


def encode(value: Any) -> bytes:
    """Compact JSON as Go's ``json.Marshal`` writes it (no trailing newline)."""
    parts: list[str] = []
    _encode(value, parts)
    return "".join(parts).encode("utf-8")
