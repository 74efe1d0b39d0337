"""Data access: PynamoDB models of one table, key helpers, bootstrap, and small repositories."""
