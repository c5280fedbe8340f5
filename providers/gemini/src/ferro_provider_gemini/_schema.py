"""JSON Schema, as OpenAI clients send it, translated to the OpenAPI 3.0 subset that
Gemini's ``Schema`` object accepts (``FunctionDeclaration.parameters``,
``GenerationConfig.responseSchema``).

An allow-list, not a blocklist: every keyword is either kept, translated, dropped because it
does not change which answers are valid (annotations), or refused with a 400 that names the
keyword and where it is. Nothing is degraded silently. The README lists each choice.
"""

from __future__ import annotations

import math
from typing import Any

from ferro import InvalidRequestError, wire

__all__ = ["HINT", "is_empty_object", "to_gemini_schema"]

HINT = ("simplify the schema, or set the gemini provider option `schema_mode: json_schema` "
        "to send it unchanged as JSON Schema (models that accept parametersJsonSchema / "
        "responseJsonSchema)")

#: Gemini ``Schema`` fields taken over unchanged.
_COPY = frozenset({
    "title", "description", "example", "pattern", "minLength", "maxLength",
    "minItems", "maxItems", "minProperties", "maxProperties", "minimum", "maximum",
    "propertyOrdering", "required",
})
#: Annotations: they describe, they do not constrain; Gemini rejects several of them.
_DROP = frozenset({
    "$schema", "$id", "$comment", "$anchor", "$defs", "definitions", "default", "examples",
    "readOnly", "writeOnly", "deprecated", "contentMediaType", "contentEncoding", "discriminator",
    "strict", "type", "nullable", "exclusiveMinimum", "exclusiveMaximum",
})
_TYPES = frozenset({"string", "number", "integer", "boolean", "array", "object"})
#: The ``format`` values Gemini supports, per type; other formats are annotations (dropped).
_FORMATS = {"string": {"enum", "date-time"}, "number": {"float", "double"},
            "integer": {"int32", "int64"}}
_UNCONSTRAINED = (None, True, False, {})


def to_gemini_schema(schema: Any, *, provider: str, path: str,
                     ordered: bool = False) -> dict[str, Any]:
    """Translate ``schema`` (found at ``path`` in the request) or raise a 400.

    ``ordered`` adds ``propertyOrdering`` (the declared property order) to objects, so that
    structured output keeps the schema's key order as OpenAI's does (Gemini otherwise
    orders keys alphabetically).
    """
    return _Converter(schema, provider, ordered).convert(schema, path)


def is_empty_object(schema: Any) -> bool:
    """Whether a tool's ``parameters`` declare no parameters at all (Gemini wants the
    field left out then: it rejects an OBJECT without properties)."""
    if not schema:
        return True
    if not isinstance(schema, dict) or schema.get("type", "object") != "object":
        return False
    if schema.get("properties") or schema.get("additionalProperties") not in (None, False):
        return False
    structural = set(schema) - {"type", "properties", "required", "additionalProperties",
                                "$schema", "title", "description"}
    return not structural


#: Keywords that only apply to some types (for splitting ``"type": [..]`` into variants).
_APPLIES_TO = {
    "properties": "object", "required": "object", "additionalProperties": "object",
    "minProperties": "object", "maxProperties": "object", "propertyOrdering": "object",
    "items": "array", "minItems": "array", "maxItems": "array", "uniqueItems": "array",
    "minLength": "string", "maxLength": "string", "pattern": "string", "enum": "string",
    "minimum": "number", "maximum": "number", "exclusiveMinimum": "number",
    "exclusiveMaximum": "number",
}


def _keywords_for(schema: dict[str, Any], kind: str) -> dict[str, Any]:
    """The part of a multi-type schema that applies to ``kind``."""
    family = "number" if kind == "integer" else kind
    out = {k: v for k, v in schema.items()
           if k not in ("title", "description", "nullable")
           and _APPLIES_TO.get(k, family) == family}
    out["type"] = kind
    return out


def _is_null(schema: Any) -> bool:
    return isinstance(schema, dict) and schema.get("type") == "null"


class _Converter:
    def __init__(self, root: Any, provider: str, ordered: bool) -> None:
        self.provider = provider
        self.ordered = ordered
        self.defs: dict[str, Any] = {}
        if isinstance(root, dict):
            for key in ("definitions", "$defs"):
                if isinstance(root.get(key), dict):
                    self.defs.update(root[key])
        self.resolving: list[str] = []

    def refuse(self, what: str, path: str) -> InvalidRequestError:
        return wire.unsupported(self.provider, f"{what} in a JSON schema (at {path})", HINT)

    def convert(self, schema: Any, path: str) -> dict[str, Any]:
        if not isinstance(schema, dict):
            raise self.refuse(f"the schema {schema!r}", path)
        if "$ref" in schema:
            return self._ref(schema, path)
        if "allOf" in schema:
            parts = schema["allOf"]
            if not isinstance(parts, list) or len(parts) != 1:
                raise self.refuse("allOf with more than one schema", path)
            rest = {k: v for k, v in schema.items() if k != "allOf"}
            return self.convert({**parts[0], **rest}, path)
        if "anyOf" in schema and "oneOf" in schema:
            raise self.refuse("anyOf together with oneOf", path)
        for key in ("anyOf", "oneOf"):
            if key in schema:
                return self._union(schema, key, path)
        types = schema.get("type")
        if isinstance(types, list):
            return self._type_list(schema, types, path)
        return self._plain(schema, path)

    def _ref(self, schema: dict[str, Any], path: str) -> dict[str, Any]:
        ref = schema["$ref"]
        name = None
        if isinstance(ref, str):
            for prefix in ("#/$defs/", "#/definitions/"):
                if ref.startswith(prefix):
                    name = ref[len(prefix):]
        if name is None or name not in self.defs:
            raise self.refuse(f"the reference {ref!r} (only local #/$defs/... resolve)", path)
        if name in self.resolving:
            raise self.refuse(f"the recursive reference {ref!r}", path)
        self.resolving.append(name)
        try:
            siblings = {k: v for k, v in schema.items() if k != "$ref"}
            return self.convert({**self.defs[name], **siblings}, path)
        finally:
            self.resolving.pop()

    def _union(self, schema: dict[str, Any], key: str, path: str) -> dict[str, Any]:
        variants = schema[key]
        if not isinstance(variants, list) or not variants:
            raise self.refuse(f"{key} that is not a non-empty array", path)
        rest = {k: v for k, v in schema.items() if k != key}
        kept = [(i, v) for i, v in enumerate(variants) if not _is_null(v)]
        nullable = len(kept) < len(variants) or rest.get("nullable") is True
        if not kept:
            raise self.refuse("a value that can only be null", path)
        if len(kept) == 1:  # X | null: collapse to X with nullable
            i, only = kept[0]
            out = self.convert({**only, **rest} if isinstance(only, dict) else only,
                               f"{path}.{key}[{i}]")
        else:  # oneOf becomes anyOf: Gemini has no oneOf (documented)
            out = self._annotations(rest, path)
            out["anyOf"] = [self.convert(v, f"{path}.{key}[{i}]") for i, v in kept]
        if nullable:
            out["nullable"] = True
        return out

    def _type_list(self, schema: dict[str, Any], types: list[Any], path: str) -> dict[str, Any]:
        kept = [t for t in types if t != "null"]
        if not kept:
            raise self.refuse("a value that can only be null", path)
        nullable = len(kept) < len(types)
        if len(kept) == 1:
            out = self._plain({**schema, "type": kept[0]}, path)
        else:  # ["string", "integer"]: one anyOf variant per type
            out = {k: schema[k] for k in ("title", "description") if k in schema}
            out["anyOf"] = [self._plain(_keywords_for(schema, t), path) for t in kept]
        if nullable:
            out["nullable"] = True
        return out

    def _annotations(self, schema: dict[str, Any], path: str) -> dict[str, Any]:
        """The parent of an anyOf keeps only its descriptive keywords."""
        out = {k: schema[k] for k in ("title", "description") if k in schema}
        extra = set(schema) - _DROP - {"title", "description", "default", "example", "type"}
        if extra:
            raise self.refuse(f"{sorted(extra)[0]!r} beside anyOf/oneOf", path)
        return out

    def _plain(self, schema: dict[str, Any], path: str) -> dict[str, Any]:
        kind = schema.get("type")
        nullable = schema.get("nullable") is True
        enum = schema.get("enum")
        if "const" in schema:
            if not isinstance(schema["const"], str):
                raise self.refuse("a const that is not a string", path)
            enum = [schema["const"]]
        if enum is not None:
            if not isinstance(enum, list) or not enum:
                raise self.refuse("an enum that is not a non-empty array", path)
            if None in enum:
                nullable = True
                enum = [v for v in enum if v is not None]
            if not enum or not all(isinstance(v, str) for v in enum):
                raise self.refuse("enum values other than strings", path)
        if kind is None:
            if "properties" in schema:
                kind = "object"
            elif "items" in schema:
                kind = "array"
            elif enum is not None:
                kind = "string"
            else:
                raise self.refuse("a schema without a type (it accepts any JSON value)", path)
        if kind == "null":
            raise self.refuse("a value that can only be null", path)
        if kind not in _TYPES:
            raise self.refuse(f"the type {kind!r}", path)
        out: dict[str, Any] = {"type": kind}
        for key, value in schema.items():
            if key in _COPY:
                out[key] = value
            elif key in _DROP or key in ("enum", "const"):
                continue
            elif key == "format":
                if value in _FORMATS.get(kind, ()):
                    out["format"] = value
            elif key == "properties":
                if not isinstance(value, dict):
                    raise self.refuse("properties that are not an object", path)
                out["properties"] = {name: self.convert(sub, f"{path}.properties.{name}")
                                     for name, sub in value.items()}
            elif key == "items":
                if not isinstance(value, dict):
                    raise self.refuse("items that are not a single schema (tuple arrays)", path)
                out["items"] = self.convert(value, f"{path}.items")
            elif key in ("additionalProperties", "unevaluatedProperties"):
                if value not in _UNCONSTRAINED:
                    raise self.refuse(f"{key} with a schema (a map of arbitrary keys)", path)
            elif key == "uniqueItems":
                if value is not False:
                    raise self.refuse("uniqueItems", path)
            else:
                raise self.refuse(f"the keyword {key!r}", path)
        if enum is not None:
            out["enum"] = enum
        self._exclusive_bounds(schema, kind, out)
        if kind == "object":
            if not out.get("properties"):
                raise self.refuse("an object without properties (a free-form object)", path)
            if self.ordered and "propertyOrdering" not in out:
                out["propertyOrdering"] = list(out["properties"])
        if kind == "array" and "items" not in out:
            raise self.refuse("an array without items", path)
        if nullable:
            out["nullable"] = True
        return out

    @staticmethod
    def _exclusive_bounds(schema: dict[str, Any], kind: str, out: dict[str, Any]) -> None:
        """exclusiveMinimum/Maximum become the inclusive bound: exact for integers (x + 1),
        for numbers the bound itself becomes allowed. Draft-4 booleans are read too."""
        for key, bound, step, pick in (("exclusiveMinimum", "minimum", 1, max),
                                       ("exclusiveMaximum", "maximum", -1, min)):
            value = schema.get(key)
            if value is True:
                value = schema.get(bound)
            if isinstance(value, bool) or not isinstance(value, int | float):
                continue
            if kind == "integer":
                value = math.floor(value) + 1 if step > 0 else math.ceil(value) - 1
            out[bound] = pick(out[bound], value) if bound in out else value
