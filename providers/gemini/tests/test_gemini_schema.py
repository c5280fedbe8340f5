"""JSON Schema -> Gemini Schema: what is kept, translated, dropped, and refused."""

import pytest
from ferro import InvalidRequestError
from ferro_provider_gemini._schema import is_empty_object, to_gemini_schema


def convert(schema, ordered=False):
    return to_gemini_schema(schema, provider="gemini", path="p", ordered=ordered)


def obj(**props):
    return {"type": "object", "properties": props}


TRANSLATED = [
    ("plain object",
     obj(city={"type": "string", "description": "City"}),
     obj(city={"type": "string", "description": "City"})),
    ("nullable type list collapses to type + nullable",
     obj(x={"type": ["string", "null"]}),
     obj(x={"type": "string", "nullable": True})),
    ("anyOf with null collapses, parent description kept",
     obj(x={"anyOf": [{"type": "integer"}, {"type": "null"}], "description": "d"}),
     obj(x={"type": "integer", "description": "d", "nullable": True})),
    ("oneOf with null collapses too",
     obj(x={"oneOf": [{"type": "null"}, {"type": "boolean"}]}),
     obj(x={"type": "boolean", "nullable": True})),
    ("a real union stays an anyOf",
     obj(x={"anyOf": [{"type": "string"}, {"type": "integer"}]}),
     obj(x={"anyOf": [{"type": "string"}, {"type": "integer"}]})),
    ("oneOf becomes anyOf",
     obj(x={"oneOf": [{"type": "string"}, {"type": "number"}, {"type": "null"}]}),
     obj(x={"anyOf": [{"type": "string"}, {"type": "number"}], "nullable": True})),
    ("several types become one variant each, with the keywords that apply to it",
     obj(x={"type": ["string", "integer"], "maxLength": 3, "minimum": 1}),
     obj(x={"anyOf": [{"type": "string", "maxLength": 3},
                      {"type": "integer", "minimum": 1}]})),
    ("annotations are dropped",
     {"$schema": "https://json-schema.org/draft/2020-12/schema", "type": "object",
      "properties": {"a": {"type": "string", "examples": ["x"], "readOnly": True,
                           "default": None, "$comment": "c"}},
      "additionalProperties": False, "strict": True},
     obj(a={"type": "string"})),
    ("enum with null becomes nullable, type inferred",
     obj(u={"enum": ["c", "f", None]}),
     obj(u={"type": "string", "enum": ["c", "f"], "nullable": True})),
    ("const becomes a one-value enum",
     obj(k={"const": "fixed"}),
     obj(k={"type": "string", "enum": ["fixed"]})),
    ("$ref resolves against $defs, siblings win",
     {"type": "object", "properties": {"a": {"$ref": "#/$defs/A", "description": "mine"}},
      "$defs": {"A": {"type": "object", "description": "theirs",
                      "properties": {"b": {"type": "string"}}}}},
     obj(a={"type": "object", "description": "mine", "properties": {"b": {"type": "string"}}})),
    ("pydantic v1 allOf of one $ref",
     {"type": "object", "properties": {"a": {"allOf": [{"$ref": "#/definitions/E"}],
                                              "description": "d"}},
      "definitions": {"E": {"type": "string", "enum": ["x", "y"]}}},
     obj(a={"type": "string", "description": "d", "enum": ["x", "y"]})),
    ("exclusive bounds: exact for integers",
     obj(n={"type": "integer", "exclusiveMinimum": 0, "exclusiveMaximum": 10}),
     obj(n={"type": "integer", "minimum": 1, "maximum": 9})),
    ("exclusive bounds: inclusive for numbers; the tighter bound wins",
     obj(n={"type": "number", "exclusiveMinimum": 0.5, "minimum": 2}),
     obj(n={"type": "number", "minimum": 2})),
    ("draft-4 boolean exclusiveMinimum",
     obj(n={"type": "integer", "minimum": 5, "exclusiveMinimum": True}),
     obj(n={"type": "integer", "minimum": 6})),
    ("supported formats kept, others dropped",
     obj(t={"type": "string", "format": "date-time"}, e={"type": "string", "format": "email"},
         i={"type": "integer", "format": "int64"}),
     obj(t={"type": "string", "format": "date-time"}, e={"type": "string"},
         i={"type": "integer", "format": "int64"})),
    ("arrays and nested objects",
     obj(xs={"type": "array", "items": obj(v={"type": "number"}), "minItems": 1,
             "uniqueItems": False}),
     obj(xs={"type": "array", "items": obj(v={"type": "number"}), "minItems": 1})),
]


@pytest.mark.parametrize(("name", "schema", "expected"), TRANSLATED,
                         ids=[t[0] for t in TRANSLATED])
def test_translated(name, schema, expected):
    assert convert(schema) == expected


REFUSED = [
    ("free-form object", obj(meta={"type": "object"}), "object without properties"),
    ("any value", obj(x={}), "without a type"),
    ("map of arbitrary keys", obj(m={"type": "object", "properties": {"a": {"type": "string"}},
                                     "additionalProperties": {"type": "string"}}),
     "additionalProperties"),
    ("uniqueItems", obj(s={"type": "array", "items": {"type": "string"}, "uniqueItems": True}),
     "uniqueItems"),
    ("not", obj(x={"type": "string", "not": {"enum": ["a"]}}), "'not'"),
    ("if/then", obj(x={"type": "string", "if": {}, "then": {}}), "'if'"),
    ("patternProperties", obj(x={"type": "object", "properties": {"a": {"type": "string"}},
                                 "patternProperties": {"^a": {"type": "string"}}}),
     "patternProperties"),
    ("integer enum", obj(x={"type": "integer", "enum": [1, 2]}), "enum values other than"),
    ("recursive $ref", {"type": "object", "properties": {"n": {"$ref": "#/$defs/N"}},
                        "$defs": {"N": {"type": "object",
                                        "properties": {"next": {"$ref": "#/$defs/N"}}}}},
     "recursive"),
    ("remote $ref", obj(x={"$ref": "https://example.com/s.json"}), "reference"),
    ("allOf of two", obj(x={"allOf": [{"type": "string"}, {"maxLength": 2}]}), "allOf"),
    ("null only", obj(x={"type": "null"}), "only be null"),
    ("tuple items", obj(x={"type": "array", "items": [{"type": "string"}]}), "tuple"),
    ("array without items", obj(x={"type": "array"}), "array without items"),
    ("multipleOf", obj(x={"type": "integer", "multipleOf": 5}), "multipleOf"),
]


@pytest.mark.parametrize(("name", "schema", "words"), REFUSED, ids=[r[0] for r in REFUSED])
def test_refused_loudly_with_the_place(name, schema, words):
    with pytest.raises(InvalidRequestError) as info:
        convert(schema)
    assert info.value.status == 400
    assert info.value.code == "unsupported_parameter"
    assert words in info.value.message
    assert "(at p.properties." in info.value.message
    assert "schema_mode: json_schema" in info.value.message


def test_ordered_adds_the_declared_property_order_at_every_level():
    schema = obj(b={"type": "string"}, a=obj(z={"type": "string"}, y={"type": "string"}))
    out = convert(schema, ordered=True)
    assert out["propertyOrdering"] == ["b", "a"]
    assert out["properties"]["a"]["propertyOrdering"] == ["z", "y"]


@pytest.mark.parametrize(("schema", "empty"), [
    (None, True),
    ({}, True),
    ({"type": "object", "properties": {}}, True),
    ({"type": "object", "properties": {}, "additionalProperties": False, "required": []}, True),
    ({"type": "object", "additionalProperties": {"type": "string"}}, False),
    ({"type": "object", "properties": {"a": {"type": "string"}}}, False),
    ({"type": "object", "anyOf": [{"type": "object"}]}, False),
])
def test_empty_parameter_objects(schema, empty):
    assert is_empty_object(schema) is empty
