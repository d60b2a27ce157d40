"""CloudWatch Logs errors in the AWS JSON 1.1 shape botocore turns into the client's exception classes."""

from __future__ import annotations

from starlette.responses import JSONResponse

CONTENT_TYPE = "application/x-amz-json-1.1"


class AwsError(Exception):
    def __init__(self, code: str, message: str, status: int = 400, retry_after: int | None = None) -> None:
        super().__init__(message)
        self.code, self.message, self.status, self.retry_after = code, message, status, retry_after

    def response(self) -> JSONResponse:
        headers = {"x-amzn-ErrorType": self.code}
        if self.retry_after:
            headers["Retry-After"] = str(self.retry_after)
        return JSONResponse({"__type": self.code, "message": self.message}, self.status, headers, media_type=CONTENT_TYPE)


def invalid(message: str) -> AwsError:
    return AwsError("InvalidParameterException", message)


def group_not_found(name: str) -> AwsError:
    return AwsError("ResourceNotFoundException", f"The specified log group does not exist: {name}")


def stream_not_found(group: str, name: str) -> AwsError:
    return AwsError("ResourceNotFoundException", f"The specified log stream does not exist: {group}/{name}")
