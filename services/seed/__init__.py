"""Seed node: stores signed offers, answers queries, and replicates with peer seeds.

Modules: settings (SeedSettings), validation (admission checks), ratelimit (per-source and
per-machine token buckets), store (memory + SQLite), replication (anti-entropy), watch (change
streams with heartbeats), server (servicer and lifecycle), client (SeedClient with failover),
cli (`gridlease seed run`).
"""
