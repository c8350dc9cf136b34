"""Jepsen-style integrity checkers over the load ledger and what the services stored."""
from chaos.integrity.analytics import check_analytics
from chaos.integrity.chat import check_chat
from chaos.integrity.migration import check_agreement, check_no_lost_writes

__all__ = ["check_analytics", "check_chat", "check_agreement", "check_no_lost_writes"]
