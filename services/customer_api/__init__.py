"""Gridlease customer api service."""
