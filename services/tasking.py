"""Tasking: scored comments and adjudication requests in; tasks and assignments out."""

from labeltrail.config import Settings
from labeltrail.kafka.serve import serve
from labeltrail.pipeline.tasking import TaskingFold


def make(settings: Settings) -> TaskingFold:
    return TaskingFold(settings.tasking_config())


if __name__ == "__main__":
    raise SystemExit(serve(make, scalable=True))
