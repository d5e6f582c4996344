"""The operator's HTTP reads of a job's aggregator (docs/contracts.md): its /status report and its
result documents. The only module of the operator that speaks HTTP to the aggregator; what it
reads is then interpreted by pure functions (esenas_operator.status, decide, results).
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any, Final

from esenas_operator.status import AggregatorReport

#: /status is small and answered from memory; a slow one counts as unreachable this tick.
STATUS_TIMEOUT: Final = 3.0


def fetch_json(url: str, timeout: float = STATUS_TIMEOUT) -> Any:
    """GET url as JSON; None on 404; raises OSError when unreachable."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        if exc.code == 404:
            return None
        raise


def fetch_report(base_url: str) -> AggregatorReport:
    """The aggregator's GET /status, parsed. Raises OSError when unreachable, ValueError, TypeError
    or AttributeError for a document that is not a report."""
    return AggregatorReport.parse(fetch_json(base_url + "/status"))
