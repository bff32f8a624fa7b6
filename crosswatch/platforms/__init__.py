"""Platforms: one package per platform (its limits and counting rule, sans-I/O steps and reconciler,
sign-in flow), the protocol they share (``base``, ``reading``) and ``registry``, which maps a
platform's name to its parts. Nothing outside this package needs to learn a platform's name.
"""
