"""Renderers: each reads only the trace and writes one format."""
