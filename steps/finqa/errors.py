"""The error kind shared by the FinQA library: a problem that is counted under a reason."""
from __future__ import annotations


class CountedError(ValueError):
    """A record, program or answer that cannot be used; `reason` is the short key it is
    counted under in reports, the message says what is wrong and where."""

    def __init__(self, reason: str, message: str):
        super().__init__(message)
        self.reason = reason
