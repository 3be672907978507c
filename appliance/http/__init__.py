"""The HTTP layer: app factory, declared routes, middlewares, API, UI and live events."""
