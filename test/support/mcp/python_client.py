"""The Python MCP SDK (PyPI `mcp`) as an agent through the gateway, for the end-to-end tests.

usage: python_client.py URL TOKEN SCENARIO
Prints one JSON object per line: progress markers while it runs ({"event": ...}), then {"result": ...}.
Scenarios: list, call, refused, invalid, progress, cancel, timeout, concurrent, idempotent.
"""

import json
import sys
import time
import uuid

import anyio
import httpx2
from mcp.client.session import ClientSession
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError


def emit(obj):
    print(json.dumps(obj), flush=True)


def meta_of(result):
    meta = result.meta or {}
    return meta.get("toolgate.dev/call", {})


def text_of(result):
    return " ".join(c.text for c in result.content if getattr(c, "type", None) == "text")


async def session_for(url, token, headers=None, fn=None):
    all_headers = {"authorization": f"Bearer {token}", **(headers or {})}
    timeout = httpx2.Timeout(30.0, read=300.0)
    async with httpx2.AsyncClient(headers=all_headers, timeout=timeout) as http:
        async with streamable_http_client(url, http_client=http) as (read, write):
            async with ClientSession(read, write) as session:
                await session.initialize()
                return await fn(session)


async def scenario(url, token, name):
    if name == "list":
        async def run(s):
            tools = (await s.list_tools()).tools
            return [{"name": t.name, "inputSchema": t.input_schema, "annotations": t.annotations.model_dump(by_alias=True, exclude_none=True) if t.annotations else None} for t in tools]
        return await session_for(url, token, fn=run)

    if name == "call":
        async def run(s):
            r = await s.call_tool("echo", {"message": "hello from python"})
            return {"isError": bool(r.is_error), "structured": r.structured_content, "text": text_of(r), "call": meta_of(r)}
        return await session_for(url, token, fn=run)

    if name == "refused":
        async def run(s):
            refused = None
            try:
                await s.call_tool("k8s_get_secret", {"namespace": "default", "name": "db"})
            except MCPError as e:
                refused = {"code": e.error.code, "message": e.error.message}
            after = await s.call_tool("echo", {"message": "still here"})
            return {"refused": refused, "after": after.structured_content}
        return await session_for(url, token, fn=run)

    if name == "invalid":
        async def run(s):
            r = await s.call_tool("echo", {"message": "x", "colour": "red"})
            after = await s.call_tool("echo", {"message": "still here"})
            return {"invalid": {"isError": bool(r.is_error), "text": text_of(r), "call": meta_of(r)}, "after": after.structured_content}
        return await session_for(url, token, fn=run)

    if name == "progress":
        async def run(s):
            seen = []

            async def on_progress(progress, total, message):
                seen.append({"progress": progress, "total": total, "message": message})

            r = await s.call_tool("sleep", {"seconds": 1}, progress_callback=on_progress)
            return {"progress": seen, "structured": r.structured_content}
        return await session_for(url, token, fn=run)

    if name == "cancel":
        async def run(s):
            started = anyio.Event()

            async def on_progress(progress, total, message):
                if message and ("started" in message or "running" in message):
                    started.set()

            outcome = {}

            async def call():
                try:
                    await s.call_tool("sleep", {"seconds": 20}, progress_callback=on_progress)
                    outcome["finished"] = True
                except anyio.get_cancelled_exc_class():
                    outcome["cancelled"] = True
                    raise

            async with anyio.create_task_group() as tg:
                tg.start_soon(call)
                with anyio.fail_after(60):
                    await started.wait()
                emit({"event": "cancelling", "at_ms": int(time.time() * 1000)})
                tg.cancel_scope.cancel()
            # The courtesy notifications/cancelled goes out as the call is abandoned; the session lives on.
            after = await s.call_tool("echo", {"message": "after cancel"})
            return {**outcome, "after": after.structured_content}
        return await session_for(url, token, fn=run)

    if name == "timeout":
        async def run(s):
            r = await s.call_tool("sleep", {"seconds": 30})
            return {"isError": bool(r.is_error), "text": text_of(r), "call": meta_of(r)}
        return await session_for(url, token, fn=run)

    if name == "concurrent":
        async def run(s):
            results = [None] * 20

            async def one(i):
                r = await s.call_tool("echo", {"message": f"concurrent {i}"})
                results[i] = {"isError": bool(r.is_error), "structured": r.structured_content, "text": text_of(r), "call_id": meta_of(r).get("call_id")}

            async with anyio.create_task_group() as tg:
                for i in range(20):
                    tg.start_soon(one, i)
            return results
        return await session_for(url, token, fn=run)

    if name == "idempotent":
        key = f"py-{uuid.uuid4()}"

        async def run(s):
            r = await s.call_tool("echo", {"message": "once from python"})
            return meta_of(r)
        first = await session_for(url, token, headers={"idempotency-key": key}, fn=run)
        second = await session_for(url, token, headers={"idempotency-key": key}, fn=run)
        return {"first": first, "second": second}

    raise SystemExit(f"unknown scenario {name}")


def main():
    url, token, name = sys.argv[1:4]
    result = anyio.run(scenario, url, token, name)
    emit({"result": result})


if __name__ == "__main__":
    main()
