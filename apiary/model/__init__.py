"""Normalised records shared by every receiver and store."""

from apiary.model.span import CORE_FIELDS, CORE_NAMES, CORE_SCHEMA, SpanBatch

__all__ = ["CORE_FIELDS", "CORE_NAMES", "CORE_SCHEMA", "SpanBatch"]
