"""Labels: consensus and adjudications in; committed labels (only those that passed QC) out."""

from labeltrail.config import Settings
from labeltrail.kafka.serve import serve
from labeltrail.pipeline.labels import LabelsFold


def make(settings: Settings) -> LabelsFold:
    return LabelsFold(auto_accept_threshold=settings.auto_accept_threshold)


if __name__ == "__main__":
    raise SystemExit(serve(make, scalable=True))
