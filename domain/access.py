"""Kept for imports written before ``domain.policy``; the rules live there."""

from domain.policy import Actor, may_read_private

__all__ = ["Actor", "may_read_private"]
