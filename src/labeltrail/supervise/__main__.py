"""``python -m labeltrail.supervise EVENTS_FILE``: the event listener supervisord runs."""

import sys
from pathlib import Path

from labeltrail.supervise.events import listen

listen(Path(sys.argv[1]))
