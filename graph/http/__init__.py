"""The HTTP edge: GraphQL over HTTP, authentication and the per-request pipeline."""

from graph.http.endpoint import GraphQLEndpoint
from graph.http.protocol import ROUTED_METHODS

__all__ = ["ROUTED_METHODS", "GraphQLEndpoint"]
