"""The Python `mcp` SDK's unified Client with a chosen protocol mode, for the e2e tests.

Usage: mcp_python_modern_client.py URL TOKEN MODE. MODE is 'auto' (probe server/discover, fall back to the
initialize handshake), 'legacy' (the handshake) or a revision pinned without a probe ('2026-07-28'). Lists the
tools and calls echo; prints one JSON line: the protocol version in use, the tools, the echo text, and the
MCP headers of each HTTP request the client sent (Mcp-Method, Mcp-Name, Mcp-Session-Id, MCP-Protocol-Version).
"""

import asyncio
import json
import sys

from mcp.client.client import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client


async def main() -> None:
    url, token, mode = sys.argv[1], sys.argv[2], sys.argv[3]
    sent: list = []

    async def record(request) -> None:
        sent.append({k.lower(): v for k, v in request.headers.items() if k.lower().startswith("mcp")})

    async with create_mcp_http_client(headers={"Authorization": f"Bearer {token}"}) as http:
        http.event_hooks["request"].append(record)
        async with Client(streamable_http_client(url, http_client=http), mode=mode) as client:
            listed = await client.list_tools()
            result = await client.call_tool("echo", {"message": "stateless hello"})
            text = "".join(getattr(c, "text", "") or "" for c in result.content)
            version = getattr(client, "protocol_version", None) or getattr(client.session, "protocol_version", None)
            print(json.dumps({"protocol_version": str(version), "tools": [t.name for t in listed.tools], "text": text, "requests": sent}))


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except BaseException as err:  # the test reads the failure from the JSON line
        while isinstance(err, BaseExceptionGroup) and err.exceptions:
            err = err.exceptions[0]
        print(json.dumps({"error": f"{type(err).__name__}: {err}"}))
