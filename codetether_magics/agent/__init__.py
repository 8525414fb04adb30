"""The agent loop, its events, tools and approval."""
