"""The rest of botocore's X-Ray service model: a few small operations served, every other one refused in AWS's shape.

Before, a path Apiary did not serve fell through to the UI's routes and answered a plain-text 404, which the
AWS SDKs cannot parse (botocore reports an empty error code). Each operation of the model now answers as
X-Ray would: served, or refused with ``x-amzn-ErrorType`` and ``{"message": …}``, naming the operation.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from apiary.permissions import Permission, needs

#: Operations of the model Apiary does not implement, by request path (botocore's ``requestUri``; all POST).
UNSERVED = {
    "/Insight": "GetInsight", "/InsightEvents": "GetInsightEvents",
    "/InsightImpactGraph": "GetInsightImpactGraph", "/InsightSummaries": "GetInsightSummaries",
}

#: Apiary stores spans unencrypted in its own files; KMS keys do not exist here.
NO_ENCRYPTION = {"EncryptionConfig": {"Status": "ACTIVE", "Type": "NONE"}}


def refuse(operation: str) -> JSONResponse:
    return JSONResponse({"message": f"Apiary does not implement the X-Ray operation {operation}; it serves trace "
                                    "segments, traces, summaries, graphs, time series statistics, groups, sampling "
                                    "rules, tags, encryption config, resource policies, indexing rules, the trace "
                                    "segment destination and trace retrieval; it does not detect insights"}, 400, {"x-amzn-ErrorType": "InvalidRequestException"})


def unserved(operation: str) -> Any:
    @needs(Permission.PUBLIC)
    async def endpoint(request: Request) -> Response:
        return refuse(operation)

    return endpoint


routes = [Route(path, unserved(op), methods=["POST"]) for path, op in UNSERVED.items()]
