"""What the X-Ray API and the daemon listener share: rules, targets, groups, their tags, resource policies, indexing
rules, trace retrievals, insights, and the ingest path."""

from __future__ import annotations

from typing import Any

from apiary.receivers.xray.groups import GroupStore
from apiary.receivers.xray.insights import Insights
from apiary.receivers.xray.policies import ResourcePolicies
from apiary.receivers.xray.retrieval import Retrievals
from apiary.receivers.xray.tags import ResourceTags
from apiary.receivers.xray.segments import SegmentError, SegmentNames, parse_document, to_batch
from apiary.sampling.rules import RuleStore
from apiary.sampling.targets import SamplingTargets
from apiary.receivers.xray.sink import XRaySink
from apiary.receivers.xray.transaction_search import IndexingRules


class XRay:
    def __init__(self, sink: XRaySink) -> None:
        self.sink = sink
        self.rules = RuleStore(sink.meta.sampling_rules)
        self.targets = SamplingTargets(sink.meta.sampling_stats, self.rules)
        self.groups = GroupStore(sink.meta.xray_groups)
        self.tags = ResourceTags(sink.meta.xray_tags, self.groups, self.rules)
        self.policies = ResourcePolicies(sink.meta.xray_policies)
        self.indexing = IndexingRules(sink.meta.xray_indexing)
        self.retrievals = Retrievals(sink.meta.xray_retrievals, sink.store)
        self.insights = Insights(self.groups, sink.store)
        #: service of recently seen (sub)segment ids, for subsegments that arrive on their own
        self.names = SegmentNames()

    def daemon_env(self) -> str | None:
        """Where the daemon's segments go: ``--xray-env``, else the first environment created."""
        if self.sink.xray_env:
            return self.sink.xray_env
        envs = self.sink.meta.environments()
        return envs[0] if envs else None

    async def put_documents(self, env: str, documents: list[Any]) -> list[dict[str, str]]:
        """PutTraceSegments: store the valid documents (answering once committed), report the others."""
        good: list[tuple[dict[str, Any], str]] = []
        unprocessed: list[dict[str, str]] = []
        for text in documents:
            if not isinstance(text, str):
                unprocessed.append({"ErrorCode": "InvalidRequestException", "Message": "each document must be a JSON string"})
                continue
            try:
                good.append((parse_document(text), text))
            except SegmentError as exc:
                item = {"ErrorCode": "InvalidRequestException", "Message": str(exc)}
                if exc.segment_id:
                    item["Id"] = exc.segment_id
                unprocessed.append(item)
        if good:
            await self.sink.append_spans(env, to_batch(good, self.names, self.sink.span_limits))
        return unprocessed
