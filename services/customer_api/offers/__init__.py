"""Offers: an in-memory index fed by the seeds' watch stream, searched with the chain's current
price and free GPUs laid over each machine's announced offer."""
