"""The MCP server: its tools, one module per kind of data, each answer compact JSON with its limits.

Every tool reads through the same layers as the HTTP read APIs (the query engine, trace search, the
stores), for the one environment of the key that made the request (`apiary.mcp.http.Caller`). Every list
is cut to a stated limit and says "N of M" and how to get the rest, so one call cannot flood an agent's
context. Bad arguments raise the SDK's `ToolError` with a message saying what to fix: the agent reads
it as the tool's answer (``isError``), never a stack trace.
"""

from __future__ import annotations

from mcp.server.mcpserver import MCPServer

from apiary.mcp import catalogue_tools, error_tools, log_tools, run_tools, trace_tools

INSTRUCTIONS = (
    "Apiary holds one environment's traces (Honeycomb-style datasets, one per service.name), log events "
    "(CloudWatch log groups) and errors (Rollbar items). Start with list_datasets / list_columns, find traces "
    "with search_traces or run_query, read one with get_trace (a summary) and then get_trace_spans (pages or "
    "subtrees) and critical_path; list_runs and compare_runs say what changed between two runs (test sessions, "
    "builds). Every list is limited; answers say 'N of M' and the offset for more.")


def build_server() -> MCPServer:
    # WARNING: the SDK configures logging at this level; its per-call INFO lines would fill the server's log.
    server: MCPServer = MCPServer("apiary", instructions=INSTRUCTIONS, log_level="WARNING")
    for kind in (catalogue_tools, trace_tools, log_tools, error_tools, run_tools):
        kind.register(server)
    return server
