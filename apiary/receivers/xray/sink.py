"""The narrow view of the server the X-Ray API and daemon get (``app.state.xray`` is built on one).

Segments in (``append_spans`` answers once committed), the span store for
X-Ray's own reads (trace summaries, traces, service graphs), the metadata
store for groups, sampling rules and their tags, resource policies, indexing rules and trace retrievals, the key check and the two settings the
receiver reads; nothing else of the server.
"""

from __future__ import annotations

from typing import Protocol

from apiary.model.limits import SpanLimits
from apiary.model.span import SpanBatch
from apiary.store.base import Store
from apiary.store.meta import ApiKey
from apiary.store.meta_groups import XRayGroupRows
from apiary.store.meta_indexing import XRayIndexingRows
from apiary.store.meta_policies import XRayPolicyRows
from apiary.store.meta_retrievals import XRayRetrievalRows
from apiary.store.meta_sampling import SamplingRuleRows, SamplingStatRows
from apiary.store.meta_tags import XRayTagRows


class XRayMeta(Protocol):
    """What X-Ray keeps in the metadata store (either `MetaStore` or `ClickHouseMeta`)."""

    sampling_rules: SamplingRuleRows
    sampling_stats: SamplingStatRows
    xray_groups: XRayGroupRows
    xray_tags: XRayTagRows
    xray_policies: XRayPolicyRows
    xray_indexing: XRayIndexingRows
    xray_retrievals: XRayRetrievalRows

    def environments(self) -> list[str]:
        """Every environment, oldest first."""


class XRaySink(Protocol):
    #: Attributes per span and bytes per value kept (``--max-span-attributes``, ``--max-value-bytes``).
    span_limits: SpanLimits
    #: ``--xray-env``: where the daemon's segments go; empty means the first environment created.
    xray_env: str
    #: The span store, for X-Ray's read operations.
    store: Store
    #: Environments, X-Ray groups and sampling rules.
    meta: XRayMeta

    def authenticate(self, key: str | None) -> ApiKey | None:
        """The key's record, or None for a missing or unknown key."""

    async def append_spans(self, env: str, batch: SpanBatch) -> None:
        """Return once every span of ``batch`` is committed."""
