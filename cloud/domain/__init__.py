"""The cloud's domain model: pure Python, no database, broker or web imports."""
