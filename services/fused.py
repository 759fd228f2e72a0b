"""The fused stages in one process: every stage but the scorer and the trainer (docs/streaming.md,
"Fused stages"); what one writes for another is handed over in memory and still written to its
topic. The same as ``labeltrail serve fused [--scalable]``.

``--scalable``: one worker of several sharing the keyed partitions, running only the scalable
stages (tasking, consensus, labels, feedback); run the others (reliability, iaa...) beside
them as their own services.
"""

import sys

from labeltrail.cli.main import app

if __name__ == "__main__":
    app(["serve", "fused", *sys.argv[1:]])
