"""Queue brokers: the contract (base.py) and its SQLite and Redis implementations."""

from jobbench.brokers.base import Broker, Retention, WorkerInfo

__all__ = ["Broker", "Retention", "WorkerInfo"]
