"""Fields Insights discovers in the text of known log formats: Lambda's platform lines and VPC flow logs.

AWS documents these as discovered fields ("Supported logs and discovered
fields"): a Lambda ``REPORT`` line gives ``@requestId``, ``@duration``,
``@billedDuration``, ``@memorySize``, ``@maxMemoryUsed``, ``@initDuration``
(sizes in bytes, as Insights reports them); ``START``/``END``/``REPORT`` give
``@type``; a VPC flow log line in the default format gives ``srcAddr``,
``dstPort``, ``action`` and the rest (without an @, as AWS names them). Each is a regular-expression extract
from the message, written only when a query names the field, so other
queries pay nothing for them. CloudTrail and other JSON logs need nothing
here: their fields are JSON keys (``userIdentity.type``), found like any other.
"""

from __future__ import annotations

from apiary.query.dialects.logs import LogDialect
from apiary.query.insights_expr import Expr, num

_NUMBER = r"([0-9]+(?:\.[0-9]+)?)"
#: field -> (regular expression on the message, group, kind, multiplier)
_LAMBDA: dict[str, tuple[str, int, str, int]] = {
    "@type": (r"^(START|END|REPORT) RequestId: ", 1, "str", 1),
    "@requestId": (r"^(?:START|END|REPORT) RequestId: ([0-9A-Za-z-]+)", 1, "str", 1),
    "@duration": (r"^REPORT .*\tDuration: " + _NUMBER + " ms", 1, "num", 1),
    "@billedDuration": (r"^REPORT .*Billed Duration: " + _NUMBER + " ms", 1, "num", 1),
    "@memorySize": (r"^REPORT .*Memory Size: ([0-9]+) MB", 1, "num", 1_000_000),
    "@maxMemoryUsed": (r"^REPORT .*Max Memory Used: ([0-9]+) MB", 1, "num", 1_000_000),
    "@initDuration": (r"^REPORT .*Init Duration: " + _NUMBER + " ms", 1, "num", 1),
    "@xrayTraceId": (r"^REPORT .*XRAY TraceId: ([^\s]+)", 1, "str", 1),
    "@xraySegmentId": (r"^REPORT .*SegmentId: ([^\s]+)", 1, "str", 1),
}
# The default flow log format, version 2: 14 space-separated fields, named as Insights names them
# (without an @, so a JSON line's own `bytes` is still found where a line is no flow log).
_FLOW_FIELDS = ("version", "accountId", "interfaceId", "srcAddr", "dstAddr", "srcPort", "dstPort", "protocol",
                "packets", "bytes", "startTime", "endTime", "action", "logStatus")
_FLOW = (r"^([0-9]+) ([0-9]{12}|unknown|-) (eni-[0-9a-f]+|-) ([^ ]+) ([^ ]+) ([0-9]+|-) ([0-9]+|-) ([0-9]+|-) "
         r"([0-9]+|-) ([0-9]+|-) ([0-9]+) ([0-9]+) (ACCEPT|REJECT|-) (OK|NODATA|SKIPDATA)$")

NAMES = tuple(_LAMBDA) + _FLOW_FIELDS


def is_flow_field(name: str) -> bool:
    return name in _FLOW_FIELDS


def discovered(name: str, d: LogDialect, message: str = "msg") -> Expr | None:
    """The SQL for a discovered field of ``message`` (a column of the base CTE), or None when ``name`` is not one.

    A flow-log field is NULL on a line that is no flow log; the caller falls back to the JSON key.
    """
    if name in _LAMBDA:
        regex, group, kind, factor = _LAMBDA[name]
        e = Expr(d.regex_extract(message, "?", group), [regex], "str")
        if kind == "num":
            e = num(d, e)
            if factor != 1:
                e = Expr(f"({e.sql} * {int(factor)})", e.params, "num")
        return e
    if name in _FLOW_FIELDS:
        piece = d.field_at(message, " ", _FLOW_FIELDS.index(name) + 1)
        e = Expr(f"CASE WHEN {d.regex_match(message, '?')} THEN {piece} END", [_FLOW], "str")
        return e  # text, as a JSON key's value is: numeric contexts convert it
    return None
