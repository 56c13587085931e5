"""The read-only dashboard on the health port: pages for people, JSON for scripts.

``view`` builds what is shown from the config and the state database (never the API),
``chart`` draws the credits chart as plain geometry, ``pages`` renders the shipped Jinja
templates, ``routes`` serves them with the token guard and the security headers.
"""

from watcher.dashboard.routes import CSP, Source, TokenGuard, dashboard_routes

__all__ = ["CSP", "Source", "TokenGuard", "dashboard_routes"]
