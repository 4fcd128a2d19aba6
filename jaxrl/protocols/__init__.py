"""Protocols built on the engine: dataset suites, RIQL's corruption, results tables and claims, L2M, HAMSTER."""
