"""Build and send one daily report, as a process of its own: ``python -m
gridflow.control.daily_notice`` with a JSON request on stdin.

The live flow's alert sink (:mod:`gridflow.dataflows.alert_sink`) starts it when it has
delivered a ``daily_heartbeat`` alert: reading a long run from the journal then never
holds the flow's interpreter lock, and the report (this layer) stays above the flows.

Request (stdin, one JSON object; secrets travel here, never on the command line)::

    {"db_url": "sqlite:///j.db", "run_id": "live-1", "day": "2024-03-04",
     "urls": ["json://127.0.0.1:8080/"], "timeout_s": 5.0}

It sends :func:`gridflow.control.daily_report.daily_report` of that run and UTC day with
:func:`gridflow.control.daily_report_text.send_daily_report`; a day without journal
rows (the run's first) gets :func:`send_no_data_notice` instead. Prints ``report`` or
``no_data`` and exits 0 when every target took it; exit 1 when a target did not; exit 2
for a bad request or a journal that cannot be read (the reason on stderr, no secret).
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Sequence
from datetime import date
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError

from gridflow.control.daily_report import daily_report, parse_day
from gridflow.control.daily_report_text import send_daily_report
from gridflow.redaction import register_secrets

__all__ = ["NoticeRequest", "main", "no_data_text", "send_no_data_notice", "send_notice"]

log = logging.getLogger(__name__)


class NoticeRequest(BaseModel):
    """What to report: run ``run_id`` of journal ``db_url``, UTC day ``day``
    (``YYYY-MM-DD``), to Apprise ``urls`` with ``timeout_s`` (s) per target."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    db_url: SecretStr
    run_id: str = Field(min_length=1)
    day: str
    urls: list[SecretStr] = Field(min_length=1)
    timeout_s: float = Field(10.0, gt=0.0, le=120.0, allow_inf_nan=False)


def no_data_text(day: date, run_id: str, why: str) -> tuple[str, str]:
    """Title and body of the notice of a day without journal rows."""
    return (f"gridflow daily {day.isoformat()}: no data",
            f"No data for {day.isoformat()} (UTC) in run {run_id}: nothing was journaled "
            f"that day (the run's first day, or the flow was down). {why}")


def send_no_data_notice(day: date, run_id: str, why: str,
                        apprise_urls: Sequence[SecretStr], timeout_s: float) -> bool:
    """Send :func:`no_data_text` (type ``info``). True when every target took it."""
    from gridflow.dataflows.alert_sink import NOTIFY_TYPES, _build_apprise

    title, body = no_data_text(day, run_id, why)
    notifier = _build_apprise(list(apprise_urls), timeout_s)
    try:
        return bool(notifier.notify(title=title, body=body, notify_type=NOTIFY_TYPES["info"]))
    except Exception as e:  # noqa: BLE001 - reported, never raised
        log.warning("no-data notice %s not delivered (%s)", day, type(e).__name__)
        return False


def send_notice(req: NoticeRequest) -> str:
    """Build and send the report of ``req`` (or the no-data notice).

    Returns
    -------
    str
        ``"report"`` or ``"no_data"`` (what was sent).

    Raises
    ------
    ValueError
        A bad ``day``.
    LookupError
        ``NO_RUNS`` / ``UNKNOWN_RUN``: the run is not in the journal.
    RuntimeError
        Some target did not take it.
    """
    day = parse_day(req.day)
    urls = list(req.urls)
    try:
        rep = daily_report(req.db_url.get_secret_value(), req.run_id, day)
    except LookupError as e:
        if not str(e).startswith("NO_DATA"):
            raise
        if not send_no_data_notice(day, req.run_id, str(e).removeprefix("NO_DATA: "), urls,
                                   req.timeout_s):
            raise RuntimeError(f"no-data notice {day} not delivered") from None
        return "no_data"
    if not send_daily_report(rep, urls, req.timeout_s):
        raise RuntimeError(f"daily report {day} not delivered")
    return "report"


def _password(db_url: str) -> str | None:
    """The database URL's password (masked in every log), None without one."""
    try:
        return urlsplit(db_url).password
    except ValueError:
        return None


def main(stdin: str | None = None) -> int:
    """The process: read the request, send, print what was sent; exit 0, 1 or 2 (module
    doc)."""
    from gridflow.logs import setup_logging

    setup_logging()
    try:
        req = NoticeRequest.model_validate(json.loads(sys.stdin.read() if stdin is None
                                                      else stdin))
        register_secrets([_password(req.db_url.get_secret_value())])
        print(send_notice(req), flush=True)
        return 0
    except RuntimeError as e:
        print(f"daily_notice: {e}", file=sys.stderr)
        return 1
    except (ValidationError, json.JSONDecodeError) as e:
        print(f"daily_notice: bad request ({type(e).__name__}; fields: "
              f"{[err['loc'] for err in e.errors()] if isinstance(e, ValidationError) else ''})",
              file=sys.stderr)
        return 2
    except (ValueError, LookupError) as e:
        print(f"daily_notice: {e}", file=sys.stderr)
        return 2
    except Exception as e:  # noqa: BLE001 - the journal unreadable: named, no secret
        print(f"daily_notice: journal not readable ({type(e).__name__})", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
