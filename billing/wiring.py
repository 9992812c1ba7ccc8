"""The composition root: what the API and the CLI give the packages at start.

A package that needs what sits above it, or beside it, takes it as a parameter instead of
importing it: invoicing issues and payments and dunning follow (`ISSUING_HOOKS`);
statements show what invoicing billed (`INVOICE_HISTORY`, answered by invoicing's drafts).
These are keyed as in Flask's `app.extensions`; `create_app` and the `billing` command
install them.
"""

from __future__ import annotations


def extensions() -> dict[str, object]:
    from billing.charges.history import INVOICE_HISTORY
    from billing.invoicing import drafts
    from billing.invoicing.issuing import ISSUING_HOOKS
    from billing.payments.collection import HOOKS

    return {ISSUING_HOOKS: HOOKS, INVOICE_HISTORY: drafts}
