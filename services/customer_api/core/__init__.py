"""Settings, database engine, migrations and secrets of the customer API."""
