"""Drives the gateway with the official OpenAI and Anthropic SDKs.

Usage: sdk_checks.py BASE_URL CHECK... Each check asserts on what the SDK returns; on
success one JSON object maps every check to its summary. Any failure exits non-zero with
the traceback and the name of the failing check.
"""
import json
import os
import sys

import anthropic
import openai

BASE = sys.argv[1]

# The client credential the gateway sees: any value unless client authentication is on.
KEY = os.environ.get("AIGW_CLIENT_KEY", "client-key")
oa = openai.OpenAI(base_url=BASE + "/v1", api_key=KEY, max_retries=0, timeout=20)
an = anthropic.Anthropic(base_url=BASE, api_key=KEY, max_retries=0, timeout=20)

MSG = [{"role": "user", "content": "Say hello"}]
WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather for a city",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
        },
    },
}


def chat(model):
    r = oa.chat.completions.create(model=model, messages=MSG)
    text = r.choices[0].message.content
    assert text and "simulator" in text, text
    assert r.usage.prompt_tokens > 0 and r.usage.completion_tokens > 0, r.usage
    assert r.usage.total_tokens == r.usage.prompt_tokens + r.usage.completion_tokens
    return {"model": r.model, "text": text, "usage": r.usage.total_tokens}


def chat_stream(model):
    text, usage, chunks = "", None, 0
    stream = oa.chat.completions.create(
        model=model, messages=MSG, stream=True, stream_options={"include_usage": True}
    )
    for c in stream:
        chunks += 1
        if c.choices and c.choices[0].delta.content:
            text += c.choices[0].delta.content
        if c.usage:
            usage = c.usage
    assert "simulator" in text, text
    assert chunks >= 3, chunks
    assert usage is not None and usage.completion_tokens > 0, usage
    return {"text": text, "chunks": chunks, "usage": usage.total_tokens}


def chat_tools(model):
    r = oa.chat.completions.create(
        model=model,
        messages=[{"role": "user", "content": "What is the weather in Paris?"}],
        tools=[WEATHER],
        tool_choice={"type": "function", "function": {"name": "get_weather"}},
    )
    calls = r.choices[0].message.tool_calls
    assert calls and calls[0].function.name == "get_weather", r
    args = json.loads(calls[0].function.arguments)
    assert isinstance(args, dict), args
    assert r.choices[0].finish_reason == "tool_calls", r.choices[0].finish_reason
    return {"tool": calls[0].function.name, "args": args}


def chat_tools_stream(model):
    name, args = None, ""
    stream = oa.chat.completions.create(
        model=model,
        messages=[{"role": "user", "content": "What is the weather in Paris?"}],
        tools=[WEATHER],
        tool_choice={"type": "function", "function": {"name": "get_weather"}},
        stream=True,
    )
    for c in stream:
        if c.choices and c.choices[0].delta.tool_calls:
            tc = c.choices[0].delta.tool_calls[0]
            if tc.function.name:
                name = tc.function.name
            if tc.function.arguments:
                args += tc.function.arguments
    assert name == "get_weather", name
    assert isinstance(json.loads(args), dict), args
    return {"tool": name}


def embeddings(model):
    r = oa.embeddings.create(model=model, input=["hello", "world"])
    assert len(r.data) == 2 and len(r.data[0].embedding) > 0, r
    return {"dims": len(r.data[0].embedding)}


def messages(model):
    r = an.messages.create(model=model, max_tokens=100, messages=MSG)
    text = r.content[0].text
    assert "simulator" in text, text
    assert r.usage.input_tokens > 0 and r.usage.output_tokens > 0, r.usage
    assert r.stop_reason == "end_turn", r.stop_reason
    return {"model": r.model, "text": text}


def messages_stream(model):
    with an.messages.stream(model=model, max_tokens=100, messages=MSG) as s:
        text = "".join(s.text_stream)
        final = s.get_final_message()
    assert "simulator" in text, text
    assert final.usage.output_tokens > 0, final.usage
    return {"text": text, "output_tokens": final.usage.output_tokens}


def expect_status(fn, status):
    try:
        fn()
    except openai.APIStatusError as e:
        assert e.status_code == status, (e.status_code, e.response.text)
        return {"status": e.status_code, "body": e.response.json()}
    except anthropic.APIStatusError as e:
        assert e.status_code == status, (e.status_code, e.response.text)
        return {"status": e.status_code, "body": e.response.json()}
    raise AssertionError(f"expected HTTP {status}")


def auth_rejected_openai():
    bad = openai.OpenAI(base_url=BASE + "/v1", api_key="wrong-key", max_retries=0, timeout=20)
    try:
        bad.chat.completions.create(model="gpt-4o-mini", messages=MSG)
    except openai.AuthenticationError as e:
        assert e.status_code == 401, e.status_code
        assert isinstance(e.body, dict) and e.body.get("message"), e.body
        return {"status": e.status_code, "type": e.type, "message": e.message}
    raise AssertionError("expected openai.AuthenticationError")


def auth_rejected_anthropic():
    bad = anthropic.Anthropic(base_url=BASE, api_key="wrong-key", max_retries=0, timeout=20)
    try:
        bad.messages.create(model="claude-3-5-sonnet", max_tokens=10, messages=MSG)
    except anthropic.AuthenticationError as e:
        assert e.status_code == 401, e.status_code
        body = e.response.json()
        assert body["type"] == "error", body
        return {"status": e.status_code, "type": body["error"]["type"], "message": e.message}
    raise AssertionError("expected anthropic.AuthenticationError")


def upstream_errors():
    """OpenAI errors (400, 404, 429) as the SDK sees them: status, request id, the
    provider's headers and the body text."""
    out = {}
    for status in (400, 404, 429):
        try:
            oa.with_options(max_retries=0).chat.completions.create(
                model="gpt-4o-mini", messages=MSG,
                extra_headers={"x-sim-status": str(status)})
            out[str(status)] = None
        except openai.APIStatusError as e:
            h = e.response.headers
            # OpenAI's wire: the envelope pretty-printed with four-space indents.
            reason = {400: "Bad Request", 404: "Not Found", 429: "Too Many Requests"}[status]
            ty, code = {404: ("invalid_request_error", "model_not_found"),
                        429: ("requests", "rate_limit_exceeded")}.get(
                            status, ("invalid_request_error", None))
            wire = json.dumps({"error": {"message": f"simulated failure: {status} {reason}",
                                         "type": ty, "param": None, "code": code}},
                              indent=4) + "\n"
            out[str(status)] = {
                "byte_exact": e.response.text == wire,
                "status": e.status_code, "request_id": e.request_id, "type": type(e).__name__,
                "error_type": (e.body or {}).get("type"), "text": e.response.text,
                "headers": {k: h.get(k) for k in (
                    "x-request-id", "openai-processing-ms", "x-ratelimit-remaining-requests",
                    "x-ratelimit-limit-tokens", "retry-after", "content-type")},
            }
    return out


CHECKS = {
    "upstream_errors": upstream_errors,
    "auth_rejected_openai": auth_rejected_openai,
    "auth_rejected_anthropic": auth_rejected_anthropic,
    "openai_chat": lambda: chat("gpt-4o-mini"),
    "openai_chat_stream": lambda: chat_stream("gpt-4o-mini"),
    "openai_tools": lambda: chat_tools("gpt-4o-mini"),
    "openai_tools_stream": lambda: chat_tools_stream("gpt-4o-mini"),
    "openai_embeddings": lambda: embeddings("text-embedding-3-small"),
    "bedrock_chat": lambda: chat("bedrock/anthropic.claude-3-haiku"),
    "bedrock_chat_stream": lambda: chat_stream("bedrock/anthropic.claude-3-haiku"),
    "bedrock_tools": lambda: chat_tools("bedrock/anthropic.claude-3-haiku"),
    "bedrock_messages": lambda: messages("bedrock/anthropic.claude-3-haiku"),
    "bedrock_messages_stream": lambda: messages_stream("bedrock/anthropic.claude-3-haiku"),
    "vertex_chat": lambda: chat("gemini-1.5-flash"),
    "vertex_chat_stream": lambda: chat_stream("gemini-1.5-flash"),
    "vertex_tools": lambda: chat_tools("gemini-1.5-flash"),
    "anthropic_chat": lambda: chat("claude-3-5-sonnet"),
    "anthropic_chat_stream": lambda: chat_stream("claude-3-5-sonnet"),
    "anthropic_messages": lambda: messages("claude-3-5-sonnet"),
    "anthropic_messages_stream": lambda: messages_stream("claude-3-5-sonnet"),
    "fallback_chat": lambda: chat("fallback-model"),
    "fallback_chat_stream": lambda: chat_stream("fallback-model"),
    "unknown_model_404": lambda: expect_status(lambda: chat("no-such-model"), 404),
    "unknown_model_404_anthropic": lambda: expect_status(lambda: messages("no-such-model"), 404),
    "oversize_413": lambda: expect_status(
        lambda: oa.chat.completions.create(
            model="fallback-model", messages=[{"role": "user", "content": "x" * 100_000}]
        ),
        413,
    ),
    "upstream_503": lambda: expect_status(
        lambda: oa.chat.completions.create(
            model="gpt-4o-mini", messages=MSG, extra_headers={"x-sim-status": "503"}
        ),
        503,
    ),
}

if __name__ == "__main__":
    results = {}
    for name in sys.argv[2:]:
        try:
            results[name] = CHECKS[name]()
        except Exception:
            print(f"check {name} failed", file=sys.stderr)
            raise
    print(json.dumps(results))
