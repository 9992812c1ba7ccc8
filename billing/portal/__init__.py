"""The web pages: customers, finance and fleet operators, server-rendered (Jinja2).

Every page reads through the API's own service functions with the principal of the
signed-in user (billing.users.services.principal_of), so that roles and scopes are
exactly the API's: another customer's page answers 404 whatever the URL says.
"""
