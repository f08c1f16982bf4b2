"""Drives an MCPRoute guarded by an external authorization service with the official
`mcp` Python SDK client and prints what it saw as one JSON object.

usage: mcp_ext_authz_client.py URL USER
Every request carries `x-user: USER` (what the test's authorization service decides
on). Allowed: the tools listed and the headers the `alpha__headers` tool saw. Refused:
the SDK's error and the HTTP statuses its transport got (an event hook records them;
the SDK reports a refusal as a JSON-RPC error without the status).
"""

import asyncio
import json
import sys

import httpx2
from mcp.client.session import ClientSession
from mcp.client.streamable_http import streamable_http_client


async def main(url, user):
    out = {"statuses": []}

    async def record(response):
        out["statuses"].append(response.status_code)

    client = httpx2.AsyncClient(
        headers={"x-user": user, "x-drop-me": "1", "x-keep": "1"}, timeout=30, event_hooks={"response": [record]}
    )
    try:
        async with client:
            async with streamable_http_client(url, http_client=client) as (read, write):
                async with ClientSession(read, write) as s:
                    await asyncio.wait_for(s.initialize(), 30)
                    out["tools"] = sorted(t.name for t in (await s.list_tools()).tools)
                    r = await s.call_tool("alpha__headers", {})
                    out["headers"] = json.loads(r.content[0].text)
                    r = await s.call_tool("alpha__echo", {"text": "x" * 100})
                    out["echo"] = r.content[0].text
    except BaseException as e:  # noqa: BLE001 - the status is what the test wants
        out["error"] = f"{type(e).__name__}: {e}"
    print(json.dumps(out))


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2]))
