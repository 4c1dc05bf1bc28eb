"""Tool calling through the official `openai` and `ollama` packages, on qwen2.5-coder 0.5b.

With `tool_choice: required` or a named function every answer must be calls whose arguments
validate against the tool's JSON Schema (constrained decoding guarantees it); with `auto`
every call that comes out must parse and validate; streamed deltas must assemble to the same
calls as the whole response; errors are 400s.
"""

import concurrent.futures
import json
import time

import jsonschema
import ollama
import openai
import pytest

from conftest import CHAT_MODEL

STRING = {"type": "string", "maxLength": 40}

TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "Current weather in a city.",
            "parameters": {
                "type": "object",
                "properties": {
                    "city": STRING,
                    "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
                },
                "required": ["city", "unit"],
            },
        },
    },
    {
        "type": "function",
        "function": {
            "name": "convert_units",
            "description": "Convert a length or a weight between units.",
            "parameters": {
                "type": "object",
                "properties": {
                    "value": {"type": "number"},
                    "from_unit": {"type": "string", "enum": ["km", "mile", "kg", "lb"]},
                    "to_unit": {"type": "string", "enum": ["km", "mile", "kg", "lb"]},
                },
                "required": ["value", "from_unit", "to_unit"],
            },
        },
    },
    {
        "type": "function",
        "function": {
            "name": "create_event",
            "description": "Put a meeting in the calendar.",
            "parameters": {
                "type": "object",
                "properties": {
                    "title": STRING,
                    "when": {
                        "type": "object",
                        "properties": {
                            "date": {"type": "string", "pattern": "^[0-9]{4}-[0-9]{2}-[0-9]{2}$"},
                            "hour": {"type": "integer", "minimum": 0, "maximum": 23},
                        },
                        "required": ["date", "hour"],
                    },
                    "attendees": {"type": "array", "items": STRING, "minItems": 1, "maxItems": 4},
                },
                "required": ["title", "when", "attendees"],
            },
        },
    },
    {
        "type": "function",
        "function": {
            "name": "search_products",
            "description": "Search the shop's catalog.",
            "parameters": {
                "type": "object",
                "properties": {
                    "query": STRING,
                    "max_price": {"type": "number", "minimum": 0},
                    "tags": {
                        "type": "array",
                        "items": {"type": "string", "enum": ["new", "sale", "eco"]},
                        "maxItems": 3,
                    },
                    "in_stock": {"type": "boolean"},
                },
                "required": ["query"],
            },
        },
    },
]
SCHEMAS = {t["function"]["name"]: t["function"]["parameters"] for t in TOOLS}

PROMPTS = [
    "What is the weather in Paris right now, in celsius?",
    "Is it hot in Phoenix today? Use fahrenheit.",
    "How many miles is 42 km?",
    "Convert 80 kg to pounds.",
    "Book a meeting called Budget review on 2025-03-14 at 10 with Ana and Bo.",
    "Schedule a call named Sync for 2025-07-01 at 15 with Kim.",
    "Find eco water bottles under 20 dollars that are in stock.",
    "Search the shop for running shoes on sale.",
    "Weather in Tokyo please, metric units.",
    "I need 3.5 miles in kilometers.",
]


@pytest.fixture(scope="module")
def client(server):
    return openai.OpenAI(base_url=server.url("/v1"), api_key="none", max_retries=0, timeout=300)


@pytest.fixture(scope="module")
def grammar_available(client):
    """Whether the server constrains decoding (probed with a JSON response_format)."""
    try:
        client.chat.completions.create(
            model=CHAT_MODEL,
            messages=[{"role": "user", "content": "hi"}],
            response_format={"type": "json_object"},
            max_tokens=1,
        )
    except openai.BadRequestError:
        return False
    return True


@pytest.fixture
def constrained(grammar_available):
    """Skips a test when the server cannot constrain decoding: then nothing makes a 0.5B
    model's calls follow the schemas."""
    if not grammar_available:
        pytest.skip("constrained decoding is not available in this build")


def check_calls(calls, allowed=None):
    """Every call names an offered tool, has a fresh id and arguments valid for its schema."""
    assert calls, "no tool calls"
    for call in calls:
        assert call.type == "function"
        assert call.id.startswith("call_") and len(call.id) > 8
        assert call.function.name in (allowed or SCHEMAS), call.function.name
        arguments = json.loads(call.function.arguments)
        jsonschema.validate(arguments, SCHEMAS[call.function.name])
    assert len({c.id for c in calls}) == len(calls)


def chat(client, prompt, **kwargs):
    return client.chat.completions.create(
        model=CHAT_MODEL,
        messages=[{"role": "user", "content": prompt}],
        tools=TOOLS,
        max_tokens=160,
        **kwargs,
    )


def test_required_calls_validate(client, constrained):
    jobs = [
        (PROMPTS[i % len(PROMPTS)], i, i % 3 != 0)  # every third request: one call only
        for i in range(50)
    ]

    def run(job):
        prompt, seed, parallel = job
        response = chat(
            client,
            prompt,
            tool_choice="required",
            parallel_tool_calls=parallel,
            temperature=0.7,
            seed=seed,
        )
        return response, parallel

    started = time.monotonic()
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        results = list(pool.map(run, jobs))
    for response, parallel in results:
        choice = response.choices[0]
        assert choice.finish_reason == "tool_calls", choice
        check_calls(choice.message.tool_calls)
        if not parallel:
            assert len(choice.message.tool_calls) == 1
    names = {c.function.name for r, _ in results for c in r.choices[0].message.tool_calls}
    print(f"\n50 required calls in {time.monotonic() - started:.1f} s, functions used: {sorted(names)}")


def test_named_tool_choice(client, constrained):
    named = {"type": "function", "function": {"name": "convert_units"}}
    for prompt in (PROMPTS[0], PROMPTS[2]):
        response = chat(client, prompt, tool_choice=named, temperature=0)
        calls = response.choices[0].message.tool_calls
        check_calls(calls, allowed={"convert_units"})
        assert response.choices[0].message.content is None


def test_auto_calls_parse_and_validate(client, constrained):
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        responses = list(pool.map(lambda p: chat(client, p, temperature=0), PROMPTS))
    answered = 0
    for response in responses:
        message = response.choices[0].message
        if message.tool_calls:
            answered += 1
            check_calls(message.tool_calls)
            assert response.choices[0].finish_reason == "tool_calls"
        else:
            assert isinstance(message.content, str)
    print(f"\nauto: {answered}/{len(PROMPTS)} prompts answered with a tool call")


def test_streamed_calls_match_whole(client, constrained):
    for prompt in (PROMPTS[4], PROMPTS[6]):
        kwargs = dict(tool_choice="required", temperature=0)
        whole = chat(client, prompt, **kwargs).choices[0]
        stream = chat(client, prompt, stream=True, stream_options={"include_usage": True}, **kwargs)
        calls, finish, usage, content = {}, None, None, ""
        for chunk in stream:
            if chunk.usage is not None:
                usage = chunk.usage
            for choice in chunk.choices:
                content += choice.delta.content or ""
                for delta in choice.delta.tool_calls or []:
                    if delta.index not in calls:
                        assert delta.id.startswith("call_") and delta.type == "function"
                        assert delta.function.name
                        calls[delta.index] = [delta.function.name, delta.function.arguments or ""]
                    else:
                        assert delta.id is None and delta.function.name is None
                        calls[delta.index][1] += delta.function.arguments or ""
                finish = choice.finish_reason or finish
        assert finish == "tool_calls"
        assert usage is not None and usage.completion_tokens > 0
        assert content.strip() == ""
        streamed = [(calls[i][0], json.loads(calls[i][1])) for i in sorted(calls)]
        expected = [(c.function.name, json.loads(c.function.arguments)) for c in whole.message.tool_calls]
        assert streamed == expected


HISTORY = [
    {"role": "user", "content": "What is the weather in Paris, in celsius?"},
    {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {
                "id": "call_abc123",
                "type": "function",
                "function": {"name": "get_weather", "arguments": '{"city": "Paris", "unit": "celsius"}'},
            }
        ],
    },
    {"role": "tool", "tool_call_id": "call_abc123", "content": '{"temperature": 18, "sky": "sunny"}'},
]


def test_history_with_tool_results_gets_text(client):
    # tool_choice none: the model answers from the result, in text.
    response = client.chat.completions.create(
        model=CHAT_MODEL,
        messages=HISTORY,
        tools=TOOLS,
        tool_choice="none",
        temperature=0,
        max_tokens=60,
    )
    message = response.choices[0].message
    assert message.tool_calls is None, message
    assert isinstance(message.content, str) and message.content.strip()
    assert response.choices[0].finish_reason in ("stop", "length")
    print(f"\nanswer from the tool result: {message.content!r}")


def test_ollama_tools(server, grammar_available):
    client = ollama.Client(host=server.base)
    options = {"temperature": 0, "num_predict": 160}
    messages = [{"role": "user", "content": PROMPTS[2]}]
    whole = client.chat(model=CHAT_MODEL, messages=messages, tools=TOOLS, stream=False, options=options)
    calls = whole.message.tool_calls or []
    for call in calls:
        assert call.function.name in SCHEMAS
        if grammar_available:
            jsonschema.validate(dict(call.function.arguments), SCHEMAS[call.function.name])
    parts = list(client.chat(model=CHAT_MODEL, messages=messages, tools=TOOLS, stream=True, options=options))
    streamed = [c for p in parts for c in (p.message.tool_calls or [])]
    assert [(c.function.name, dict(c.function.arguments)) for c in streamed] == [
        (c.function.name, dict(c.function.arguments)) for c in calls
    ]
    assert parts[-1].done
    history = [
        HISTORY[0],
        {"role": "assistant", "content": "", "tool_calls": [
            {"function": {"name": "get_weather", "arguments": {"city": "Paris", "unit": "celsius"}}}
        ]},
        {"role": "tool", "content": '{"temperature": 18, "sky": "sunny"}', "tool_name": "get_weather"},
    ]
    answer = client.chat(model=CHAT_MODEL, messages=history, tools=TOOLS, stream=False, options=options)
    assert answer.done
    for call in answer.message.tool_calls or []:
        assert call.function.name in SCHEMAS
    assert answer.message.content or answer.message.tool_calls
    print(f"\nollama: {len(calls)} call(s) for {PROMPTS[2]!r}")


@pytest.mark.parametrize(
    "body, param",
    [
        ({"tool_choice": {"type": "function", "function": {"name": "nope"}}}, "tool_choice"),
        ({"tool_choice": "sometimes"}, "tool_choice"),
        ({"tools": [{"type": "function", "function": {"name": "bad name!"}}]}, "tools[0].function.name"),
        ({"tools": [{"type": "retrieval"}]}, "tools[0].type"),
        ({"tools": [{"type": "function", "function": {"name": "f", "parameters": {"type": "string"}}}]},
         "tools[0].function.parameters"),
        ({"messages": [
            {"role": "user", "content": "hi"},
            {"role": "assistant", "tool_calls": [
                {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": "{not json"}}
            ]},
        ]}, "messages[1].tool_calls[0].function.arguments"),
    ],
)
def test_errors_are_400(client, body, param):
    request = {"messages": [{"role": "user", "content": "hi"}], "tools": TOOLS, "max_tokens": 4, **body}
    with pytest.raises(openai.BadRequestError) as err:
        client.chat.completions.create(model=CHAT_MODEL, **request)
    assert err.value.status_code == 400
    assert err.value.body["param"] == param, err.value.body
