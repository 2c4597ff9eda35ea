"""Oncology literature question answering with cited, verified answers."""

__version__ = "0.1.0"
