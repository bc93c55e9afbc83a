"""Reports: builders that turn query results into typed contexts, and the Jinja2 templates."""
