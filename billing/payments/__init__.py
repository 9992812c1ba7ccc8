"""Collection of finalized invoices through Stripe, and what Stripe tells us back.

Our invoices stay the legal documents; Stripe only collects. A finalized invoice, or a
credit note of an invoice collected through Stripe, is queued in the same transaction that
issues it (`services.enqueue_invoice`); the scheduler's `stripe_sync` job mirrors the queue
to Stripe through `gateway.StripeGateway`, the one class that talks to Stripe, and Stripe's
webhooks mark the invoices paid or failed.
"""
