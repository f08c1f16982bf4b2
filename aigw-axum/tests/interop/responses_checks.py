"""The OpenAI Responses API through aigw with clients we did not write: the `openai`
SDK (`responses.create`, `responses.stream`, `responses.input_tokens`) and the OpenAI
Agents SDK (a two-turn tool-using agent). Prints one JSON object; the Rust test asserts.

usage: responses_checks.py BASE_URL MODEL CHECK...
"""
import asyncio
import json
import sys

TOOLS = [{
    "type": "function", "name": "get_weather", "description": "Weather for a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}},
                   "required": ["city"], "additionalProperties": False},
    "strict": True,
}]


def client(base):
    import openai
    return openai.OpenAI(base_url=base + "/v1", api_key="client-key", max_retries=0)


def create(base, model):
    r = client(base).responses.create(
        model=model, instructions="Answer briefly.", input="hello there gateway", store=False,
        max_output_tokens=256)
    return {"text": r.output_text, "status": r.status, "id": r.id,
            "usage": [r.usage.input_tokens, r.usage.output_tokens, r.usage.total_tokens]}


def stream(base, model):
    events, seqs, text = [], [], ""
    with client(base).responses.stream(
            model=model, input=[{"role": "developer", "content": "be brief"},
                                {"role": "user", "content": "hello streaming gateway"}],
            store=False) as s:
        for ev in s:
            events.append(ev.type)
            seqs.append(ev.sequence_number)
            if ev.type == "response.output_text.delta":
                text += ev.delta
        final = s.get_final_response()
    assert seqs == list(range(len(seqs))), seqs
    return {"events": events, "text": text, "final_text": final.output_text,
            "usage": [final.usage.input_tokens, final.usage.output_tokens]}


def tools(base, model):
    c = client(base)
    first = c.responses.create(model=model, input="call a tool for Paris", tools=TOOLS,
                               store=False)
    call = next(o for o in first.output if o.type == "function_call")
    args = json.loads(call.arguments)
    second = c.responses.create(
        model=model, tools=TOOLS, store=False,
        input=[{"role": "user", "content": "call a tool for Paris"}]
        + [o.model_dump(exclude_none=True) for o in first.output]
        + [{"type": "function_call_output", "call_id": call.call_id, "output": "sunny"}])
    # Streamed tool call: argument deltas add up to the final arguments.
    deltas, done = "", None
    with c.responses.stream(model=model, input="call a tool for Rome", tools=TOOLS,
                            store=False) as s:
        for ev in s:
            if ev.type == "response.function_call_arguments.delta":
                deltas += ev.delta
            if ev.type == "response.function_call_arguments.done":
                done = ev.arguments
    return {"tool": call.name, "args": args, "answer": second.output_text,
            "stream_args_match": deltas == done and bool(done)}


def chain(base, model):
    """A stored turn (store left to its default) continued by previous_response_id."""
    c = client(base)
    first = c.responses.create(model=model, input="call a tool for Paris", tools=TOOLS)
    call = next(o for o in first.output if o.type == "function_call")
    second = c.responses.create(
        model=model, tools=TOOLS, previous_response_id=first.id,
        input=[{"type": "function_call_output", "call_id": call.call_id, "output": "sunny"}])
    return {"first_store": first.store, "previous": second.previous_response_id,
            "first_id": first.id, "answer": second.output_text}


def retrieve(base, model):
    """A stored response read back, its input items paged and it deleted: by
    `responses.retrieve`, `responses.input_items.list` and `responses.delete`."""
    import openai
    c = client(base)
    made = c.responses.create(model=model, instructions="Answer briefly.",
                              input=[{"role": "user", "content": "first words"},
                                     {"role": "user", "content": "second words"},
                                     {"role": "user", "content": "third words"}])
    with c.responses.stream(model=model, input="streamed and stored") as s:
        streamed = s.get_final_response()
    got = c.responses.retrieve(made.id)
    got_streamed = c.responses.retrieve(streamed.id)
    page = c.responses.input_items.list(made.id, limit=2, order="asc")
    rest = c.responses.input_items.list(made.id, limit=2, order="asc", after=page.last_id)
    every = [i.content[0].text for i in c.responses.input_items.list(made.id)]  # auto-paged
    c.responses.delete(got_streamed.id)  # the SDK's own call (it discards the body)
    deleted = json.loads(c.responses.with_raw_response.delete(made.id).text)
    try:
        c.responses.retrieve(made.id)
        after_delete = None
    except openai.NotFoundError as e:
        after_delete = [e.status_code, e.type]
    return {"id": made.id, "got_id": got.id, "got_text": got.output_text,
            "made_text": made.output_text, "status": got.status,
            "streamed_id": streamed.id, "got_streamed_id": got_streamed.id,
            "got_streamed_text": got_streamed.output_text, "streamed_text": streamed.output_text,
            "page": [i.content[0].text for i in page.data], "has_more": page.has_more,
            "rest": [i.content[0].text for i in rest.data], "rest_has_more": rest.has_more,
            "every": every, "deleted": deleted, "after_delete": after_delete}


def query(base, model):
    """A client query string (`extra_query`) on responses.create."""
    r = client(base).responses.create(model=model, input="with a query", store=False,
                                      extra_query={"aigw_check": "q 1"})
    return {"status": r.status}


def input_tokens(base, model):
    r = client(base).responses.input_tokens.count(model=model, input="count these four words")
    return {"input_tokens": r.input_tokens}


def agent(base, model):
    from agents import (Agent, OpenAIResponsesModel, Runner, function_tool,
                        set_tracing_disabled)
    from openai import AsyncOpenAI
    set_tracing_disabled(True)
    calls = []

    @function_tool
    def get_weather(city: str) -> str:
        """Weather for a city."""
        calls.append(city)
        return f"sunny in {city}"

    async def run():
        oc = AsyncOpenAI(base_url=base + "/v1", api_key="client-key", max_retries=0)
        a = Agent(name="weather", instructions="Use the tool.", tools=[get_weather],
                  model=OpenAIResponsesModel(model=model, openai_client=oc))
        first = await Runner.run(a, "call a tool: weather in Paris")
        history = first.to_input_list() + [
            {"role": "user", "content": "please call a tool again for Rome"}]
        second = await Runner.run(a, history)
        return first, second

    first, second = asyncio.run(run())
    return {"tool_calls": len(calls), "first": first.final_output,
            "second": second.final_output, "items": len(second.to_input_list())}


CHECKS = {"chain": chain, "create": create, "stream": stream, "tools": tools, "input_tokens": input_tokens,
          "agent": agent, "retrieve": retrieve, "query": query}

if __name__ == "__main__":
    base, model = sys.argv[1], sys.argv[2]
    print(json.dumps({name: CHECKS[name](base, model) for name in sys.argv[3:]}))
