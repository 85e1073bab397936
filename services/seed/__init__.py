"""Seed node: stores signed offers, answers queries, and replicates with peer seeds.

Modules: settings (SeedSettings), validation (admission checks), store (memory + SQLite),
replication (anti-entropy), watch (change streams), server (servicer and lifecycle),
client (SeedClient with failover), cli (`gridlease seed run`).
"""
