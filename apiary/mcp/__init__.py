"""Apiary for coding agents: an MCP server (Model Context Protocol) over the read APIs.

* `tools` -- the tools an agent calls (environments, datasets, columns, Honeycomb queries, trace search,
  a trace read progressively, critical path, logs, errors), each answer compact JSON with explicit limits;
* `trace_view` -- a trace cut into what an agent's context can hold: a summary first, then pages or subtrees;
* `log_search` -- CloudWatch filter patterns and Logs Insights run to completion for one tool call;
* `http` -- streamable HTTP at ``/mcp`` on the main port, keyed like every other read API;
* `stdio` -- ``apiary mcp``: a stdio bridge to a running server's ``/mcp``, so the key is checked in one place.
"""
