"""Drives the simulator with the official clients and prints one JSON summary line.

usage: simulator_sdks.py openai|anthropic|bedrock BASE_URL
The Rust test asserts on the summary; an exception here fails the test.
"""
import json
import sys


def run_openai(base):
    import openai

    client = openai.OpenAI(base_url=base + "/v1", api_key="sk-sim", max_retries=0)
    msgs = [{"role": "user", "content": "hello there simulator"}]
    r = client.chat.completions.create(model="gpt-4o-mini", messages=msgs)
    out = {
        "text": r.choices[0].message.content,
        "finish": r.choices[0].finish_reason,
        "usage": [r.usage.prompt_tokens, r.usage.completion_tokens, r.usage.total_tokens],
    }
    parts, usage, finish = [], None, None
    for chunk in client.chat.completions.create(
        model="gpt-4o-mini", messages=msgs, stream=True, stream_options={"include_usage": True}
    ):
        if chunk.usage is not None:
            usage = [chunk.usage.prompt_tokens, chunk.usage.completion_tokens]
        for c in chunk.choices:
            if c.delta.content:
                parts.append(c.delta.content)
            finish = c.finish_reason or finish
    out["stream_text"] = "".join(parts)
    out["stream_chunks"] = len(parts)
    out["stream_usage"] = usage
    out["stream_finish"] = finish
    tools = [{"type": "function", "function": {"name": "get_weather", "parameters": {
        "type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}]
    t = client.chat.completions.create(model="gpt-4o-mini", messages=msgs, tools=tools, tool_choice="required")
    call = t.choices[0].message.tool_calls[0]
    out["tool"] = [call.function.name, json.loads(call.function.arguments), t.choices[0].finish_reason]
    args = ""
    for chunk in client.chat.completions.create(
        model="gpt-4o-mini", messages=msgs, tools=tools, tool_choice="required", stream=True
    ):
        for c in chunk.choices:
            for tc in c.delta.tool_calls or []:
                args += tc.function.arguments or ""
    out["stream_tool_args"] = json.loads(args)
    # Responses API with reasoning and a summary: the reasoning item first, its summary
    # streamed as OpenAI streams it (the SDK's stream helper checks the event order).
    reasoning = {"effort": "low", "summary": "auto"}
    rs = client.responses.create(model="o4-mini", input="hello there simulator", reasoning=reasoning)
    out["reasoning_output"] = [o.type for o in rs.output]
    out["reasoning_summary"] = rs.output[0].summary[0].text
    out["reasoning_tokens"] = rs.usage.output_tokens_details.reasoning_tokens
    out["reasoning_text"] = rs.output_text
    kinds, summary = [], ""
    with client.responses.stream(model="o4-mini", input="hello there simulator", reasoning=reasoning) as s:
        for ev in s:
            kinds.append(ev.type)
            if ev.type == "response.reasoning_summary_text.delta":
                summary += ev.delta
        final = s.get_final_response()
    out["stream_reasoning_summary"] = summary
    out["stream_reasoning_events"] = [k for k in kinds if "reasoning" in k or "output_item" in k]
    out["stream_final_output"] = [o.type for o in final.output]
    out["stream_final_summary"] = final.output[0].summary[0].text
    out["stream_final_text"] = final.output_text
    # Effort without a summary: a reasoning item with an empty summary, nothing streamed.
    plain = client.responses.create(model="o4-mini", input="hello there simulator", reasoning={"effort": "low"})
    out["no_summary"] = [[o.type for o in plain.output], plain.output[0].summary]
    e = client.embeddings.create(model="text-embedding-3-small", input=["a b", "c"])
    out["embeddings"] = [len(e.data), len(e.data[0].embedding), e.usage.prompt_tokens]
    try:
        openai.OpenAI(base_url=base + "/v1", api_key="wrong", max_retries=0).chat.completions.create(
            model="gpt-4o-mini", messages=msgs)
        out["bad_key"] = None
    except openai.AuthenticationError as err:
        out["bad_key"] = [err.status_code, err.code]
    return out


def run_anthropic(base):
    import anthropic

    client = anthropic.Anthropic(base_url=base, api_key="sk-ant-sim", max_retries=0)
    msgs = [{"role": "user", "content": "hello there simulator"}]
    r = client.messages.create(model="claude-sonnet-4-5", max_tokens=64, messages=msgs)
    out = {
        "text": r.content[0].text,
        "stop": r.stop_reason,
        "usage": [r.usage.input_tokens, r.usage.output_tokens],
    }
    with client.messages.stream(model="claude-sonnet-4-5", max_tokens=64, messages=msgs) as s:
        out["stream_text"] = "".join(s.text_stream)
        final = s.get_final_message()
    out["stream_usage"] = [final.usage.input_tokens, final.usage.output_tokens]
    out["stream_stop"] = final.stop_reason
    tools = [{"name": "get_weather", "input_schema": {
        "type": "object", "properties": {"city": {"type": "string"}}}}]
    with client.messages.stream(model="claude-sonnet-4-5", max_tokens=64, messages=msgs,
                                tools=tools, tool_choice={"type": "any"}) as s:
        final = s.get_final_message()
    block = final.content[0]
    out["stream_tool"] = [block.type, block.name, block.input, final.stop_reason]
    out["count"] = client.messages.count_tokens(model="claude-sonnet-4-5", messages=msgs).input_tokens
    try:
        anthropic.Anthropic(base_url=base, api_key="wrong", max_retries=0).messages.create(
            model="claude-sonnet-4-5", max_tokens=8, messages=msgs)
        out["bad_key"] = None
    except anthropic.AuthenticationError as err:
        out["bad_key"] = [err.status_code, err.body["error"]["type"]]
    return out


def run_bedrock(base):
    import boto3
    import botocore.exceptions
    from botocore.config import Config

    def client(secret):
        return boto3.client(
            "bedrock-runtime", region_name="us-east-1", endpoint_url=base,
            aws_access_key_id="AKIDSIMULATOR", aws_secret_access_key=secret,
            config=Config(retries={"max_attempts": 1}),
        )

    c = client("sim-secret")
    model = "anthropic.claude-3-haiku-20240307-v1:0"
    msgs = [{"role": "user", "content": [{"text": "hello there simulator"}]}]
    r = c.converse(modelId=model, messages=msgs)
    out = {
        "text": r["output"]["message"]["content"][0]["text"],
        "stop": r["stopReason"],
        "usage": [r["usage"]["inputTokens"], r["usage"]["outputTokens"], r["usage"]["totalTokens"]],
    }
    events, text, usage = [], "", None
    for ev in c.converse_stream(modelId=model, messages=msgs)["stream"]:
        name = next(iter(ev))
        events.append(name)
        if name == "contentBlockDelta":
            text += ev[name]["delta"]["text"]
        if name == "metadata":
            usage = [ev[name]["usage"]["inputTokens"], ev[name]["usage"]["outputTokens"]]
    out["stream_events"] = events
    out["stream_text"] = text
    out["stream_usage"] = usage
    tool_cfg = {"tools": [{"toolSpec": {"name": "get_weather", "inputSchema": {"json": {
        "type": "object", "properties": {"city": {"type": "string"}}}}}}], "toolChoice": {"any": {}}}
    tool_input = ""
    for ev in c.converse_stream(modelId=model, messages=msgs, toolConfig=tool_cfg)["stream"]:
        if "contentBlockDelta" in ev:
            tool_input += ev["contentBlockDelta"]["delta"]["toolUse"]["input"]
    out["stream_tool_input"] = json.loads(tool_input)
    body = json.dumps({"anthropic_version": "bedrock-2023-05-31", "max_tokens": 32, "messages": msgs})
    inv = c.invoke_model(modelId=model, body=body)
    out["invoke_text"] = json.loads(inv["body"].read())["content"][0]["text"]
    chunks = []
    for ev in c.invoke_model_with_response_stream(modelId=model, body=body)["body"]:
        chunks.append(json.loads(ev["chunk"]["bytes"])["type"])
    out["invoke_stream_types"] = chunks
    try:
        client("wrong-secret").converse(modelId=model, messages=msgs)
        out["bad_secret"] = None
    except botocore.exceptions.ClientError as err:
        out["bad_secret"] = [err.response["ResponseMetadata"]["HTTPStatusCode"], err.response["Error"]["Code"]]
    return out


if __name__ == "__main__":
    kind, base = sys.argv[1], sys.argv[2]
    result = {"openai": run_openai, "anthropic": run_anthropic, "bedrock": run_bedrock}[kind](base)
    print(json.dumps(result))
