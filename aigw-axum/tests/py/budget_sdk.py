"""Runs money budgets out through the official OpenAI and Anthropic Python SDKs.

argv[1] is a JSON plan: {"url", "openai_key", "anthropic_key", "chunks"}. For each SDK
it streams one long answer that the gateway cuts off mid-way (the budget runs out: the
simulator streams far more than the 50 tokens the request reserved) and then sends one
more request, which the gateway refuses up front. It reports what the
SDK raised, how much text arrived before the cut, and the refusal's status and code.
"""

import json
import sys

import anthropic
import openai


def openai_case(plan):
    client = openai.OpenAI(base_url=plan["url"] + "/v1", api_key=plan["openai_key"])
    headers = {"x-sim-chunks": str(plan["chunks"]), "x-sim-chunk-interval-ms": "2"}
    msgs = [{"role": "user", "content": "tell me a long story"}]
    out = {"text": "", "raised": None}
    try:
        for chunk in client.chat.completions.create(
            model="gpt-4o-mini", messages=msgs, stream=True, max_tokens=50,
            extra_headers=headers
        ):
            if chunk.choices and chunk.choices[0].delta.content:
                out["text"] += chunk.choices[0].delta.content
    except openai.APIError as e:
        out["raised"] = {"class": type(e).__name__, "message": e.message,
                         "type": getattr(e, "type", None), "code": getattr(e, "code", None)}
    try:
        client.chat.completions.create(model="gpt-4o-mini", messages=msgs)
        out["refused"] = None
    except openai.APIStatusError as e:
        out["refused"] = {"class": type(e).__name__, "status": e.status_code,
                          "code": getattr(e, "code", None), "type": getattr(e, "type", None),
                          "should_retry": e.response.headers.get("x-should-retry")}
    return out


def anthropic_case(plan):
    client = anthropic.Anthropic(base_url=plan["url"], api_key=plan["anthropic_key"])
    headers = {"x-sim-chunks": str(plan["chunks"]), "x-sim-chunk-interval-ms": "2"}
    msgs = [{"role": "user", "content": "tell me a long story"}]
    out = {"text": "", "raised": None}
    try:
        with client.messages.stream(
            model="claude-sonnet-4", max_tokens=50, messages=msgs, extra_headers=headers
        ) as s:
            for text in s.text_stream:
                out["text"] += text
    except anthropic.APIError as e:
        body = getattr(e, "body", None)
        out["raised"] = {"class": type(e).__name__, "message": e.message,
                         "error_type": body.get("error", {}).get("type")
                         if isinstance(body, dict) else None}
    try:
        client.messages.create(model="claude-sonnet-4", max_tokens=64, messages=msgs)
        out["refused"] = None
    except anthropic.APIStatusError as e:
        out["refused"] = {"class": type(e).__name__, "status": e.status_code,
                          "type": e.body.get("error", {}).get("type")
                          if isinstance(e.body, dict) else None,
                          "should_retry": e.response.headers.get("x-should-retry")}
    return out


def main():
    plan = json.loads(sys.argv[1])
    print(json.dumps({"openai": openai_case(plan), "anthropic": anthropic_case(plan)}))


if __name__ == "__main__":
    main()
