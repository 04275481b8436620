"""HTTP blueprints: discovery, hooks, feedback, statements, sandbox. Registered in ``create_app``."""
