"""Gridlease GPU node: hardware inventory, workload runtimes and metrics of one provider machine."""
