"""Logs never contain phones, addresses or coordinates.

``install()`` (called by the app factory and the CLI) wraps the process's log record factory so
that every record's message and traceback is redacted when it is made, whichever library logs
it: mobile numbers, decimal coordinates, Chinese street addresses and URL query strings (where
lookups carry addresses and points) become ``[phone]``, ``[coord]``, ``[address]`` and
``?[query]``. SQLAlchemy's engines are also built with ``hide_parameters`` (see
``gridsvc.storage.engine``), so a failed statement never logs the values it carried.

Redaction is deliberately broad: a unit name such as 阳光小区1栋 is redacted too.
"""

from __future__ import annotations

import logging
import re
import traceback
from typing import Any

PATTERNS = [
    (re.compile(r"\?[^\s\"']+"), "?[query]"),
    (re.compile(r"(?<!\d)(?:\+?86[- ]?)?1[3-9]\d(?:[- ]?\d{4}){2}(?!\d)"), "[phone]"),
    (re.compile(r"(?<![\d.])-?\d{1,3}\.\d{3,}"), "[coord]"),
    (re.compile(r"[\u4e00-\u9fff\w\-]*(?:路|街|巷|弄|大道|号|栋|幢|单元|室|小区|苑|村|里)"
                r"[\u4e00-\u9fff\w\-]*"), "[address]"),
]

_installed = False


def redact(text: str) -> str:
    for pattern, replacement in PATTERNS:
        text = pattern.sub(replacement, text)
    return text


def install() -> None:
    """Redact every log record made from now on in this process (idempotent)."""
    global _installed
    if _installed:
        return
    make_record = logging.getLogRecordFactory()

    def safe_record(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = make_record(*args, **kwargs)
        try:
            message = record.getMessage()
        except Exception:  # a bad format string: keep only the template
            message = str(record.msg)
        record.msg, record.args = redact(message), ()
        if record.exc_info and record.exc_info[0] is not None:
            record.exc_text = redact("".join(traceback.format_exception(*record.exc_info))
                                     .rstrip("\n"))
            record.exc_info = None
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        return record

    logging.setLogRecordFactory(safe_record)
    _installed = True
