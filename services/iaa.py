"""IAA: comments, votes and gold results in; agreement windows and blind-spot alerts out."""

from labeltrail.config import Settings
from labeltrail.kafka.serve import serve
from labeltrail.pipeline.iaa import IaaConfig, IaaFold


def make(settings: Settings) -> IaaFold:
    # Live: windows close by watermark only; closing on drain would cut today's window short.
    return IaaFold(IaaConfig(close_on_drain=False))


if __name__ == "__main__":
    raise SystemExit(serve(make))
