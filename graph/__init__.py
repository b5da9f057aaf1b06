"""The GraphQL edge: HTTP app, schema, resolvers, loaders, permissions, CLI."""
