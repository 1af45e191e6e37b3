"""Reusable parts of idistill: each usable without Ray where it can be."""
