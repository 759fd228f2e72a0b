"""Consensus: votes in; rolling consensus, adjudication requests and honeypot scores out."""

from labeltrail.config import Settings
from labeltrail.kafka.serve import serve
from labeltrail.pipeline.consensus import ConsensusConfig, ConsensusFold


def make(settings: Settings) -> ConsensusFold:
    return ConsensusFold(
        ConsensusConfig(
            agreement_threshold=settings.agreement_threshold, method=settings.consensus_method
        )
    )


if __name__ == "__main__":
    raise SystemExit(serve(make, scalable=True))
