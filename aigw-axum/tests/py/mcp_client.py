"""Drives the MCP gateway with the official `mcp` Python SDK client and prints what it
saw as one JSON object (the Rust test asserts on it).

usage: mcp_client.py URL [KILL_PID]
With KILL_PID, that backend process is killed mid-session and the session goes on.
"""

import asyncio
import json
import os
import signal
import sys

import mcp.types as types
from mcp.client.session import ClientSession
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError


def text(result):
    return [c.text for c in result.content if getattr(c, "type", "") == "text"]


async def main(url, kill_pid):
    out = {}
    progress = []
    sampled = []

    async def on_sampling(context, params):
        sampled.append(params.messages[0].content.text)
        return types.CreateMessageResult(
            role="assistant", content=types.TextContent(type="text", text="forty-two"), model="test-model"
        )

    async def on_progress(p, total, message):
        progress.append([p, total, message])

    async with streamable_http_client(url) as (read, write):
        async with ClientSession(read, write, sampling_callback=on_sampling) as s:
            init = await s.initialize()
            out["server"] = init.server_info.name
            out["protocol"] = init.protocol_version
            out["caps"] = sorted(k for k, v in init.capabilities.model_dump(exclude_none=True).items())
            out["tools"] = sorted(t.name for t in (await s.list_tools()).tools)
            out["echo"] = text(await s.call_tool("alpha__echo", {"text": "hi"}))
            out["add"] = text(await s.call_tool("beta__add", {"a": 2, "b": 3}))
            try:
                r = await s.call_tool("alpha__secret_admin", {})
                out["hidden"] = {"is_error": r.is_error, "text": text(r)}
            except MCPError as e:
                out["hidden"] = {"error": e.error.message}
            out["prompts"] = sorted(p.name for p in (await s.list_prompts()).prompts)
            g = await s.get_prompt("beta__greet", {"who": "ann"})
            out["prompt"] = [m.content.text for m in g.messages]
            out["resources"] = sorted(r.uri for r in (await s.list_resources()).resources)
            out["templates"] = sorted(t.uri_template for t in (await s.list_resource_templates()).resource_templates)
            rr = await s.read_resource("alpha+mem://alpha/info")
            out["read"] = [[c.uri, c.text] for c in rr.contents]
            rt = await s.read_resource("beta+mem://beta/items/7")
            out["read_template"] = [c.text for c in rt.contents]
            out["countdown"] = text(await s.call_tool("alpha__countdown", {"steps": 3}, progress_callback=on_progress))
            out["progress"] = progress
            out["ask"] = text(await s.call_tool("alpha__ask", {"question": "meaning of life?"}))
            out["sampled"] = sampled
            link = await s.call_tool("alpha__link", {})
            out["link"] = [c.uri for c in link.content if getattr(c, "type", "") == "resource_link"]
            await s.send_ping()
            out["ping"] = True
            if kill_pid:
                os.kill(kill_pid, signal.SIGKILL)
                await asyncio.sleep(0.5)
                try:
                    r = await s.call_tool("beta__echo", {"text": "anyone?"})
                    out["after_kill_beta"] = {"is_error": r.is_error, "text": text(r)}
                except MCPError as e:
                    out["after_kill_beta"] = {"error": e.error.message}
                out["after_kill_alpha"] = text(await s.call_tool("alpha__echo", {"text": "still here"}))
                lt = await s.list_tools()
                out["after_kill_tools"] = sorted(t.name for t in lt.tools)
                out["after_kill_meta"] = lt.meta
    print(json.dumps(out))


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else None))
