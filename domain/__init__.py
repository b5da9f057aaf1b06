"""Business rules of marketgraph. Imports no framework: only the standard library."""
