"""A request X-Ray refuses, in its words: the error type (``x-amzn-ErrorType``) and its HTTP status.

The configuration operations (resource policies, indexing rules, trace segment destination, trace retrieval) and
NextToken paging raise it; the API turns it into X-Ray's error shape.
"""

from __future__ import annotations


class Refused(ValueError):
    def __init__(self, message: str, code: str = "InvalidRequestException", status: int = 400) -> None:
        super().__init__(message)
        self.code, self.status = code, status
