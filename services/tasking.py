"""Tasking: scored comments and adjudication requests in; tasks and assignments out."""

from labeltrail.config import Settings
from labeltrail.kafka.serve import serve
from labeltrail.pipeline.tasking import TaskingConfig, TaskingFold


def make(settings: Settings) -> TaskingFold:
    return TaskingFold(
        TaskingConfig(
            redundancy=settings.redundancy,
            min_crowd_pool=settings.min_crowd_pool,
            honeypot_rate=settings.honeypot_rate,
            low_margin_threshold=settings.low_margin_threshold,
            crowd_cost_usd=settings.crowd_cost_usd,
            expert_cost_usd=settings.expert_cost_usd,
        )
    )


if __name__ == "__main__":
    raise SystemExit(serve(make, scalable=True))
