"""The pipeline's steps: plain functions, each with a ``python -m`` entry point for Argo."""

from __future__ import annotations

__all__: list[str] = []
