"""The composition root: what the API and the CLI give the packages at start.

A package that sets going what sits above it takes a function for it instead of importing
it (invoicing issues, payments and dunning follow). These are the functions, keyed as in
Flask's `app.extensions`; `create_app` and the `billing` command install them.
"""

from __future__ import annotations


def extensions() -> dict[str, object]:
    from billing.charges.history import INVOICE_HISTORY
    from billing.invoicing import drafts
    from billing.invoicing.issuing import ISSUING_HOOKS
    from billing.payments.collection import HOOKS

    return {ISSUING_HOOKS: HOOKS, INVOICE_HISTORY: drafts}
