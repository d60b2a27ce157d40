"""The X-Ray page: groups (with their filter expressions) and sampling rules with what SDKs reported."""

from __future__ import annotations

import asyncio
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from apiary.permissions import Permission, needs
from apiary.keyed_routes import error
from apiary.ui.queries import seconds_iso


@needs(Permission.READ)
async def xray_doc(request: Request, env: str) -> Response:
    """X-Ray groups (with filter expressions) and sampling rules with the statistics SDKs reported in the last hour."""
    xray = getattr(request.app.state, "xray", None)
    if xray is None:
        return error(503, "X-Ray is not running")

    def work() -> dict[str, Any]:
        stats = {s["RuleName"]: s for s in xray.targets.summaries(env)}
        rules = []
        for rec in xray.rules.list(env):
            r, st = rec.rule, stats.get(rec.rule.RuleName, {})
            rules.append({"name": r.RuleName, "priority": r.Priority, "fixed_rate": r.FixedRate,
                          "reservoir_size": r.ReservoirSize, "service_name": r.ServiceName, "service_type": r.ServiceType,
                          "host": r.Host, "http_method": r.HTTPMethod, "url_path": r.URLPath, "resource_arn": r.ResourceARN,
                          "attributes": r.Attributes, "created_at": seconds_iso(rec.created_at),
                          "modified_at": seconds_iso(rec.modified_at), "requests": st.get("RequestCount", 0),
                          "sampled": st.get("SampledCount", 0), "borrowed": st.get("BorrowCount", 0),
                          "stats_at": seconds_iso(st["Timestamp"]) if st else None})
        groups = [{"name": g.name, "filter_expression": g.filter_expression, "arn": g.arn(), "insights": g.insights,
                   "notifications": g.notifications} for g in xray.groups.list(env)]
        return {"groups": groups, "rules": rules}

    return JSONResponse({"environment": env, **(await asyncio.to_thread(work))})
