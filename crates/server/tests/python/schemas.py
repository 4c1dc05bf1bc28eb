"""JSON schemas of the response shapes OpenAI and Ollama document, checked with jsonschema."""

import jsonschema

NULLABLE_STRING = {"type": ["string", "null"]}
USAGE = {
    "type": "object",
    "required": ["prompt_tokens", "completion_tokens", "total_tokens"],
    "properties": {
        "prompt_tokens": {"type": "integer", "minimum": 0},
        "completion_tokens": {"type": "integer", "minimum": 0},
        "total_tokens": {"type": "integer", "minimum": 0},
    },
}
FINISH = {"enum": ["stop", "length"]}
TOP_LOGPROB = {
    "type": "object",
    "required": ["token", "logprob", "bytes"],
    "properties": {
        "token": {"type": "string"},
        "logprob": {"type": "number", "maximum": 0},
        "bytes": {"type": "array", "items": {"type": "integer", "minimum": 0, "maximum": 255}},
    },
}
CHAT_LOGPROBS = {
    "type": ["object", "null"],
    "required": ["content"],
    "properties": {
        "content": {
            "type": "array",
            "items": {
                **TOP_LOGPROB,
                "required": ["token", "logprob", "bytes", "top_logprobs"],
                "properties": {
                    **TOP_LOGPROB["properties"],
                    "top_logprobs": {"type": "array", "items": TOP_LOGPROB},
                },
            },
        }
    },
}
CHAT_COMPLETION = {
    "type": "object",
    "required": ["id", "object", "created", "model", "choices", "usage"],
    "properties": {
        "id": {"type": "string", "pattern": "^chatcmpl-"},
        "object": {"const": "chat.completion"},
        "created": {"type": "integer"},
        "model": {"type": "string"},
        "usage": USAGE,
        "choices": {
            "type": "array",
            "minItems": 1,
            "items": {
                "type": "object",
                "required": ["index", "message", "finish_reason", "logprobs"],
                "properties": {
                    "index": {"type": "integer"},
                    "message": {
                        "type": "object",
                        "required": ["role", "content"],
                        "properties": {"role": {"const": "assistant"}, "content": {"type": "string"}},
                    },
                    "finish_reason": FINISH,
                    "logprobs": CHAT_LOGPROBS,
                },
            },
        },
    },
}
CHAT_CHUNK = {
    "type": "object",
    "required": ["id", "object", "created", "model", "choices"],
    "properties": {
        "object": {"const": "chat.completion.chunk"},
        "choices": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["index", "delta", "finish_reason"],
                "properties": {
                    "delta": {
                        "type": "object",
                        "properties": {"role": {"const": "assistant"}, "content": {"type": "string"}},
                        "additionalProperties": False,
                    },
                    "finish_reason": {"enum": ["stop", "length", None]},
                    "logprobs": CHAT_LOGPROBS,
                },
            },
        },
        "usage": {"oneOf": [USAGE, {"type": "null"}]},
    },
}
TEXT_COMPLETION = {
    "type": "object",
    "required": ["id", "object", "created", "model", "choices"],
    "properties": {
        "id": {"type": "string", "pattern": "^cmpl-"},
        "object": {"const": "text_completion"},
        "choices": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["index", "text", "finish_reason", "logprobs"],
                "properties": {
                    "text": {"type": "string"},
                    "finish_reason": {"enum": ["stop", "length", None]},
                    "logprobs": {
                        "type": ["object", "null"],
                        "required": ["tokens", "token_logprobs", "top_logprobs", "text_offset"],
                    },
                },
            },
        },
        "usage": {"oneOf": [USAGE, {"type": "null"}]},
    },
}
EMBEDDINGS = {
    "type": "object",
    "required": ["object", "data", "model", "usage"],
    "properties": {
        "object": {"const": "list"},
        "data": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["object", "index", "embedding"],
                "properties": {
                    "object": {"const": "embedding"},
                    "index": {"type": "integer"},
                    "embedding": {"type": ["array", "string"]},
                },
            },
        },
        "usage": {
            "type": "object",
            "required": ["prompt_tokens", "total_tokens"],
        },
    },
}
OPENAI_ERROR = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["message", "type", "param", "code"],
            "properties": {
                "message": {"type": "string", "minLength": 1},
                "type": {"type": "string"},
                "param": NULLABLE_STRING,
                "code": NULLABLE_STRING,
            },
        }
    },
}
OLLAMA_ERROR = {
    "type": "object",
    "required": ["error"],
    "properties": {"error": {"type": "string", "minLength": 1}},
}
OLLAMA_FINAL = {
    "type": "object",
    "required": [
        "model", "created_at", "done", "done_reason", "total_duration", "load_duration",
        "prompt_eval_count", "prompt_eval_duration", "eval_count", "eval_duration",
    ],
    "properties": {
        "done": {"const": True},
        "done_reason": {"enum": ["stop", "length"]},
        "created_at": {"type": "string", "pattern": r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+Z$"},
        **{
            k: {"type": "integer", "minimum": 0}
            for k in [
                "total_duration", "load_duration", "prompt_eval_count",
                "prompt_eval_duration", "eval_count", "eval_duration",
            ]
        },
    },
}


def check(instance, schema):
    jsonschema.validate(instance, schema)
