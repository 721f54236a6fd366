"""Shared building blocks below every stage: vector math and exact search, retrieval metrics, devices, defaults.

Stages (train, evaluate, stores, serve) import from here; nothing here imports a stage.
"""
