"""An independent MCP client for the e2e tests: the Python `mcp` SDK from PyPI (pinned in mcp-python.ts).

Usage: mcp_python_client.py URL TOKEN CALLS_JSON. In one session: initialize, tools/list, then each call of
CALLS_JSON ([{"name": ..., "arguments": {...}}]). Prints one JSON line: the negotiated protocol version, the
listed tool names, and per call its text or the JSON-RPC error the SDK raised.
"""

import asyncio
import json
import sys

from mcp import ClientSession
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client
from mcp.shared.exceptions import MCPError


def _field(obj, *names):
    for name in names:
        if hasattr(obj, name):
            return getattr(obj, name)
    return None


async def main() -> None:
    url, token, calls = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
    out: dict = {"calls": []}
    async with create_mcp_http_client(headers={"Authorization": f"Bearer {token}"}) as http:
        async with streamable_http_client(url, http_client=http) as streams:
            async with ClientSession(streams[0], streams[1]) as session:
                init = await session.initialize()
                out["protocol_version"] = _field(init, "protocol_version", "protocolVersion")
                listed = await session.list_tools()
                out["tools"] = [t.name for t in listed.tools]
                for call in calls:
                    try:
                        result = await session.call_tool(call["name"], call["arguments"])
                        text = "".join(_field(c, "text") or "" for c in result.content)
                        out["calls"].append({"name": call["name"], "is_error": bool(_field(result, "is_error", "isError")), "text": text})
                    except MCPError as err:
                        e = err.error
                        out["calls"].append({"name": call["name"], "error": {"code": e.code, "message": e.message, "data": e.data}})
    print(json.dumps(out, default=str))


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except Exception as err:  # the test reads the failure from the JSON line
        print(json.dumps({"error": f"{type(err).__name__}: {err}"}))
