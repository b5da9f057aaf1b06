"""Adapters: database, Redis, tokens, passwords, logging, settings."""
