"""The Python `mcp` SDK's own server (MCPServer, Streamable HTTP, stateless), one `echo` tool: an upstream
that speaks the 2026-07-28 revision (server/discover, no initialize, no session), for the e2e tests. It
guards against DNS rebinding: a request whose Host is not its own address and port is refused (421).

Usage: mcp_python_modern_server.py PORT
"""

import sys

from mcp.server.mcpserver import MCPServer

app = MCPServer("modern-echo")


@app.tool()
def echo(message: str) -> str:
    """Echo a message."""
    return message


app.run(transport="streamable-http", host="127.0.0.1", port=int(sys.argv[1]), stateless_http=True)
