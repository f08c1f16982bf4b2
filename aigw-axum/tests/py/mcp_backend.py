"""An MCP server built with the official `mcp` Python SDK (its MCPServer, formerly
FastMCP), serving Streamable HTTP: the backend of the MCP gateway tests.

usage: mcp_backend.py NAME PORT [--json] [--headers]
With --headers, a `headers` tool answers the request headers it was called with.
"""

import json
import sys

import mcp.types as types
from mcp.server.mcpserver import Context, MCPServer

name, port = sys.argv[1], int(sys.argv[2])
json_response = "--json" in sys.argv[3:]
server = MCPServer(name, log_level="WARNING")


@server.tool()
def echo(text: str) -> str:
    """Echoes the text, naming the server."""
    return f"{name}: {text}"


@server.tool()
def add(a: int, b: int) -> int:
    """Adds two integers."""
    return a + b


@server.tool()
def secret_admin() -> str:
    """A tool the route's toolSelector hides."""
    return "should never be reachable"


@server.tool()
async def countdown(steps: int, ctx: Context) -> str:
    """Reports progress once per step."""
    for i in range(steps):
        await ctx.report_progress(i + 1, steps, f"step {i + 1}")
    return f"{name} counted {steps}"


@server.tool()
async def ask(question: str, ctx: Context) -> str:
    """Asks the client's model (sampling/createMessage) and returns its answer."""
    result = await ctx.session.create_message(
        [types.SamplingMessage(role="user", content=types.TextContent(type="text", text=question))],
        max_tokens=16,
    )
    content = result.content
    return f"{name} heard: {getattr(content, 'text', content)}"


@server.tool()
def link() -> list:
    """Returns a resource link (its URI is namespaced by the gateway)."""
    return [types.ResourceLink(type="resource_link", uri=f"mem://{name}/info", name="info")]


@server.tool()
def trace_context(ctx: Context) -> str:
    """The W3C trace context this call arrived with: its `traceparent` header and the
    one in the request's `_meta` (the telemetry tests check the gateway set both)."""
    meta = ctx.request_context.meta
    if meta is not None and not isinstance(meta, dict):
        meta = meta.model_dump() if hasattr(meta, "model_dump") else dict(meta)
    return json.dumps({
        "header": (ctx.headers or {}).get("traceparent"),
        "meta": (meta or {}).get("traceparent"),
    })


@server.prompt()
def greet(who: str) -> str:
    """A greeting prompt."""
    return f"{name} greets {who}"


@server.resource(f"mem://{name}/info")
def info() -> str:
    """A static resource."""
    return f"info of {name}"


@server.resource(f"mem://{name}/items/{{item}}")
def item(item: str) -> str:
    """A templated resource."""
    return f"{name} item {item}"


if "--headers" in sys.argv[3:]:

    @server.tool()
    def headers(ctx: Context) -> str:
        """The HTTP headers this call arrived with (lower-case names)."""
        return json.dumps({k.lower(): v for k, v in (ctx.headers or {}).items()})


server.run(transport="streamable-http", host="127.0.0.1", port=port, json_response=json_response)
