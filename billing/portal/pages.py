"""Attaches the web pages to the application."""

from flask import Flask

# The view modules add their routes to the blueprint when imported.
from billing.portal import customer_views, finance_views, operator_views, sign_in  # noqa: F401
from billing.portal.web import blp


def register_pages(app: Flask) -> None:
    app.register_blueprint(blp)
