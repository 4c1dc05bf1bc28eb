"""A small tool-using agent against `slm serve`, with the official `openai` package.

Two local tools: a calculator that evaluates arithmetic safely (a whitelist over Python's
syntax tree, no eval) and a unit converter over a fixed table. The loop sends the
conversation with the tools, runs every call the model makes, appends the results and asks
again, until the model answers in text; the last round asks for that answer with
`tool_choice: "none"`. Runs offline.

    slm serve qwen2.5-coder:0.5b            # in one terminal
    python examples/agent.py                # in another (pip install openai)
    python examples/agent.py "How many km is 26.2 miles, times 2?"
"""

import ast
import json
import operator
import os
import sys

from openai import OpenAI

BASE_URL = os.environ.get("SLM_BASE_URL", "http://127.0.0.1:8377/v1")
MODEL = os.environ.get("SLM_MODEL", "qwen2.5-coder:0.5b")
MAX_ROUNDS = 4

OPERATORS = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.Pow: operator.pow,
    ast.Mod: operator.mod,
    ast.USub: operator.neg,
    ast.UAdd: operator.pos,
}


def calculate(expression: str) -> float:
    """Evaluates + - * / % ** and parentheses over numbers; anything else is refused."""

    def walk(node):
        if isinstance(node, ast.Expression):
            return walk(node.body)
        if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)):
            return node.value
        if isinstance(node, ast.BinOp) and type(node.op) in OPERATORS:
            left, right = walk(node.left), walk(node.right)
            if isinstance(node.op, ast.Pow) and abs(right) > 100:
                raise ValueError("exponent too large")
            return OPERATORS[type(node.op)](left, right)
        if isinstance(node, ast.UnaryOp) and type(node.op) in OPERATORS:
            return OPERATORS[type(node.op)](walk(node.operand))
        raise ValueError(f"unsupported expression: {ast.dump(node)[:60]}")

    return walk(ast.parse(expression, mode="eval"))


# Factors to a base unit per quantity (metre, kilogram).
UNITS = {
    "km": ("length", 1000.0),
    "m": ("length", 1.0),
    "mile": ("length", 1609.344),
    "ft": ("length", 0.3048),
    "kg": ("mass", 1.0),
    "lb": ("mass", 0.45359237),
    "g": ("mass", 0.001),
}


def convert(value: float, from_unit: str, to_unit: str) -> float:
    """Converts between units of the same quantity in the table."""
    (kind_from, factor_from), (kind_to, factor_to) = UNITS[from_unit], UNITS[to_unit]
    if kind_from != kind_to:
        raise ValueError(f"cannot convert {kind_from} to {kind_to}")
    return value * factor_from / factor_to


TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "calculate",
            "description": "Evaluate an arithmetic expression such as '(2 + 3) * 4.5'.",
            "parameters": {
                "type": "object",
                "properties": {"expression": {"type": "string", "maxLength": 80}},
                "required": ["expression"],
            },
        },
    },
    {
        "type": "function",
        "function": {
            "name": "convert",
            "description": "Convert a value between units: " + ", ".join(UNITS) + ".",
            "parameters": {
                "type": "object",
                "properties": {
                    "value": {"type": "number"},
                    "from_unit": {"type": "string", "enum": list(UNITS)},
                    "to_unit": {"type": "string", "enum": list(UNITS)},
                },
                "required": ["value", "from_unit", "to_unit"],
            },
        },
    },
]
FUNCTIONS = {"calculate": calculate, "convert": convert}


def run_call(call) -> str:
    """Runs one tool call; errors go back to the model as text."""
    try:
        arguments = json.loads(call.function.arguments)
        result = FUNCTIONS[call.function.name](**arguments)
        return json.dumps({"result": round(result, 6)})
    except Exception as err:  # the model sees what went wrong and may retry
        return json.dumps({"error": str(err)})


def main() -> None:
    question = " ".join(sys.argv[1:]) or "How many kilometres are 26.2 miles? Then multiply that by 3."
    client = OpenAI(base_url=BASE_URL, api_key=os.environ.get("SLM_API_KEY", "none"))
    messages = [
        {"role": "system", "content": "Use the tools for every conversion and calculation."},
        {"role": "user", "content": question},
    ]
    print(f"user: {question}")
    for round in range(MAX_ROUNDS):
        # The last round asks for the answer in words: no more calls.
        choice = "auto" if round < MAX_ROUNDS - 1 else "none"
        response = client.chat.completions.create(
            model=MODEL,
            messages=messages,
            tools=TOOLS,
            tool_choice=choice,
            temperature=0,
            max_tokens=200,
        )
        message = response.choices[0].message
        if not message.tool_calls:
            print(f"assistant: {message.content}")
            return
        messages.append(message.model_dump(exclude_none=True))
        for call in message.tool_calls:
            result = run_call(call)
            print(f"tool call: {call.function.name}({call.function.arguments}) -> {result}")
            messages.append({"role": "tool", "tool_call_id": call.id, "content": result})


if __name__ == "__main__":
    main()
