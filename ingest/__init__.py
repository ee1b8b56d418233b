"""Pipelines that move many items through the models into storage (reader -> mapper -> writer).

Shared by the command line, the API and batch jobs.
"""
