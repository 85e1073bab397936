"""Gridlease off-chain services: seed, GPU node, customer API, and the code they share."""
