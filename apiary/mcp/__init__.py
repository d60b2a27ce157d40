"""Apiary for coding agents: an MCP server (Model Context Protocol) over the read APIs.

* `tools` -- the server: its tools, registered from one module per kind of data (`catalogue_tools`:
  environments, datasets, columns, Honeycomb queries; `trace_tools`: search, a trace read progressively,
  critical path; `log_tools`: log groups, filter patterns and Insights; `error_tools`: Rollbar items);
* `answers`, `paging` -- what the tools share: the caller, compact JSON, argument limits, "N of M";
* `trace_view` -- a trace cut into what an agent's context can hold: a summary first, then pages or subtrees;
* `log_search` -- CloudWatch filter patterns and Logs Insights run to completion for one tool call;
* `http` -- streamable HTTP at ``/mcp`` on the main port, keyed like every other read API;
* `stdio` -- ``apiary mcp``: a stdio bridge to a running server's ``/mcp``, so the key is checked in one place
  (its flags in `command`, which the CLI imports without the MCP SDK).
"""
