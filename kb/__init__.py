"""The knowledge base: models, database, store, queries, diff, impact and the command line."""
