"""The ledger in SQLite or PostgreSQL: engine and transactions, tables, migrations, booking,
the balance and purchases, the credit sync, names and collection state."""
