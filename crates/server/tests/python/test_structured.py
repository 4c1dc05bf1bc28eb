"""Structured output: replies under JSON Schemas (OpenAI response_format, Ollama format) always
parse and validate, json_object mode gives an object, and a bad schema is a 400."""

import json
import urllib.request
from concurrent.futures import ThreadPoolExecutor

import jsonschema
import ollama
import openai
import pytest

from conftest import CHAT_MODEL, post_json

# Formats llguidance enforces, checked here too.
FORMAT_CHECKER = jsonschema.Draft202012Validator.FORMAT_CHECKER
MAX_TOKENS = 200

SCHEMAS = {
    "person": {
        "type": "object",
        "properties": {
            "name": {"type": "string", "minLength": 1, "maxLength": 40},
            "age": {"type": "integer", "minimum": 0, "maximum": 120},
            "email": {"type": "string", "format": "email"},
        },
        "required": ["name", "age", "email"],
        "additionalProperties": False,
    },
    "product": {
        "type": "object",
        "properties": {
            "sku": {"type": "string", "pattern": "^[A-Z]{3}-[0-9]{4}$"},
            "price": {"type": "number", "minimum": 0, "maximum": 10000},
            "in_stock": {"type": "boolean"},
            "tags": {
                "type": "array",
                "items": {"enum": ["new", "sale", "popular", "limited"]},
                "minItems": 1,
                "maxItems": 3,
            },
        },
        "required": ["sku", "price", "in_stock", "tags"],
        "additionalProperties": False,
    },
    "order": {
        "type": "object",
        "properties": {
            "customer": {
                "type": "object",
                "properties": {
                    "name": {"type": "string", "maxLength": 30},
                    "address": {
                        "type": "object",
                        "properties": {
                            "city": {"type": "string", "maxLength": 30},
                            "zip": {"type": "string", "pattern": "^[0-9]{5}$"},
                        },
                        "required": ["city", "zip"],
                        "additionalProperties": False,
                    },
                },
                "required": ["name", "address"],
                "additionalProperties": False,
            },
            "lines": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {
                        "item": {"type": "string", "maxLength": 20},
                        "quantity": {"type": "integer", "minimum": 1, "maximum": 10},
                    },
                    "required": ["item", "quantity"],
                    "additionalProperties": False,
                },
                "minItems": 1,
                "maxItems": 3,
            },
        },
        "required": ["customer", "lines"],
        "additionalProperties": False,
    },
    "ticket": {
        "type": "object",
        "properties": {
            "status": {"enum": ["open", "in_progress", "closed"]},
            "priority": {"type": "integer", "minimum": 1, "maximum": 5},
            "assignee": {"type": ["string", "null"], "maxLength": 20},
        },
        "required": ["status", "priority", "assignee"],
        "additionalProperties": False,
    },
    "event": {
        "type": "object",
        "properties": {
            "title": {"type": "string", "maxLength": 40},
            "date": {"type": "string", "format": "date"},
            "attendees": {"type": "integer", "minimum": 0, "maximum": 500},
        },
        "required": ["title", "date", "attendees"],
        "additionalProperties": False,
    },
    "location": {
        "type": "object",
        "properties": {
            "place": {"type": "string", "maxLength": 30},
            "lat": {"type": "number", "minimum": -90, "maximum": 90},
            "lon": {"type": "number", "minimum": -180, "maximum": 180},
        },
        "required": ["place", "lat", "lon"],
        "additionalProperties": False,
    },
    "scores": {
        "type": "object",
        "properties": {
            "scores": {
                "type": "array",
                "items": {"type": "integer", "minimum": 0, "maximum": 100},
                "minItems": 2,
                "maxItems": 5,
            },
            "passed": {"type": "boolean"},
        },
        "required": ["scores", "passed"],
        "additionalProperties": False,
    },
    "shape": {
        "type": "object",
        "properties": {
            "shape": {
                "anyOf": [
                    {
                        "type": "object",
                        "properties": {
                            "kind": {"const": "circle"},
                            "radius": {"type": "number", "minimum": 0, "maximum": 100},
                        },
                        "required": ["kind", "radius"],
                        "additionalProperties": False,
                    },
                    {
                        "type": "object",
                        "properties": {
                            "kind": {"const": "square"},
                            "side": {"type": "number", "minimum": 0, "maximum": 100},
                        },
                        "required": ["kind", "side"],
                        "additionalProperties": False,
                    },
                ]
            },
            "color": {"type": "string", "pattern": "^#[0-9a-f]{6}$"},
        },
        "required": ["shape", "color"],
        "additionalProperties": False,
    },
    "config": {
        "type": "object",
        "$defs": {
            "flag": {
                "type": "object",
                "properties": {
                    "name": {"type": "string", "pattern": "^[a-z_]{1,16}$"},
                    "enabled": {"type": "boolean"},
                },
                "required": ["name", "enabled"],
                "additionalProperties": False,
            }
        },
        "properties": {
            "version": {"type": "string", "pattern": "^[0-9]+\\.[0-9]+\\.[0-9]+$"},
            "flags": {"type": "array", "items": {"$ref": "#/$defs/flag"}, "maxItems": 3},
        },
        "required": ["version", "flags"],
        "additionalProperties": False,
    },
}

TASKS = [
    "Invent an example",
    "Give a realistic example",
    "Make up a short sample",
    "Produce test data",
    "Create one record",
    "Fill in plausible values",
]


def validate(text, schema):
    value = json.loads(text)
    jsonschema.validate(value, schema, format_checker=FORMAT_CHECKER)
    return value


def ask(client, index):
    name = list(SCHEMAS)[index % len(SCHEMAS)]
    schema = SCHEMAS[name]
    task = TASKS[index % len(TASKS)]
    reply = client.chat.completions.create(
        model=CHAT_MODEL,
        messages=[
            {"role": "user", "content": f"{task} of a {name} as JSON."},
        ],
        response_format={
            "type": "json_schema",
            "json_schema": {"name": name, "schema": schema, "strict": index % 2 == 0},
        },
        max_tokens=MAX_TOKENS,
        temperature=0.7,
        seed=index,
    )
    choice = reply.choices[0]
    return name, choice.finish_reason, choice.message.content


def test_fifty_schema_replies_validate(server):
    client = openai.OpenAI(base_url=server.url("/v1"), api_key="none", max_retries=0)
    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(lambda i: ask(client, i), range(50)))
    failures = []
    for name, finish, text in results:
        try:
            assert finish == "stop", f"finish_reason {finish}"
            validate(text, SCHEMAS[name])
        except (AssertionError, ValueError, jsonschema.ValidationError) as err:
            failures.append(f"{name}: {err}: {text!r}")
    assert not failures, "\n".join(failures)


def test_json_object_mode(server):
    client = openai.OpenAI(base_url=server.url("/v1"), api_key="none", max_retries=0)
    reply = client.chat.completions.create(
        model=CHAT_MODEL,
        messages=[{"role": "user", "content": "List two colors as a JSON object."}],
        response_format={"type": "json_object"},
        max_tokens=MAX_TOKENS,
        temperature=0,
    )
    assert reply.choices[0].finish_reason == "stop"
    assert isinstance(json.loads(reply.choices[0].message.content), dict)


def test_completions_accept_response_format(server):
    status, _, body = post_json(
        server.url("/v1/completions"),
        {
            "model": CHAT_MODEL,
            "prompt": "The answer as JSON:",
            "max_tokens": 60,
            "temperature": 0,
            "response_format": {"type": "json_schema", "json_schema": {"name": "a", "schema": SCHEMAS["ticket"]}},
        },
    )
    assert status == 200, body
    validate(body["choices"][0]["text"], SCHEMAS["ticket"])


def test_ollama_format_schema_and_json(server):
    client = ollama.Client(host=server.base)
    schema = SCHEMAS["location"]
    reply = client.chat(
        model=CHAT_MODEL,
        messages=[{"role": "user", "content": "Where is Paris? Answer as JSON."}],
        format=schema,
        options={"temperature": 0, "num_predict": MAX_TOKENS},
    )
    assert reply.done_reason == "stop"
    validate(reply.message.content, schema)
    generated = client.generate(
        model=CHAT_MODEL,
        prompt="Describe a cat as JSON.",
        format="json",
        options={"temperature": 0, "num_predict": MAX_TOKENS},
    )
    assert isinstance(json.loads(generated.response), dict)


@pytest.mark.parametrize(
    "response_format",
    [
        {"type": "json_schema", "json_schema": {"name": "bad", "schema": {"type": "nonsense"}}},
        {"type": "json_schema", "json_schema": {"name": "bad", "schema": {"type": "string", "pattern": "(unclosed"}}},
        {"type": "json_schema", "json_schema": {"name": "bad", "schema": 42}},
        {"type": "xml"},
    ],
)
def test_invalid_schemas_are_400(server, response_format):
    client = openai.OpenAI(base_url=server.url("/v1"), api_key="none", max_retries=0)
    with pytest.raises(openai.BadRequestError) as err:
        client.chat.completions.create(
            model=CHAT_MODEL,
            messages=[{"role": "user", "content": "hi"}],
            response_format=response_format,
            max_tokens=8,
        )
    assert err.value.status_code == 400
    assert err.value.body["message"]


def test_ollama_bad_format_is_400(server):
    status, _, body = post_json(
        server.url("/api/generate"),
        {"model": CHAT_MODEL, "prompt": "hi", "format": {"type": "nonsense"}, "stream": False},
    )
    assert status == 400, body
