"""Every module that defines tables, imported so that Base.metadata knows them all.

Alembic's env.py and the tests import this; a new model module adds one line here.
"""

from cloud import alerting, audit, models, quality, signatures, traceability
from cloud.api import tokens  # noqa: F401  (a model module, without Flask)

Base = models.Base
__all__ = ["Base", "alerting", "audit", "models", "quality", "signatures", "traceability"]
