"""The pages' words in English and French. English is the key; a message missing from the
French catalogue shows in English (tests/unit/portal checks every template's messages
are here)."""

from __future__ import annotations

from typing import Any

LANGUAGES = ("en", "fr")

FRENCH: dict[str, str] = {
    # layout and sign-in
    "Usage billing": "Facturation à l'usage",
    "Skip to content": "Aller au contenu",
    "Sign in": "Se connecter",
    "Sign out": "Se déconnecter",
    "E-mail address": "Adresse e-mail",
    "Send me a sign-in link": "M'envoyer un lien de connexion",
    "Staff with a password": "Personnel avec mot de passe",
    "Password": "Mot de passe",
    "Sign in with the password": "Se connecter avec le mot de passe",
    "If {email} is the address of an account, a sign-in link is on its way. It works once, "
    "for {minutes} minutes.": "Si {email} est l'adresse d'un compte, un lien de connexion "
    "est en route. Il ne sert qu'une fois, pendant {minutes} minutes.",
    "The mail could not be sent; try again in a few minutes.": "Le message n'a pas pu être "
    "envoyé ; réessayez dans quelques minutes.",
    "Wrong address or password.": "Adresse ou mot de passe incorrect.",
    "Continue": "Continuer",
    "This sign-in link is not valid.": "Ce lien de connexion n'est pas valide.",
    "This sign-in link has been used already.": "Ce lien de connexion a déjà servi.",
    "This sign-in link has expired.": "Ce lien de connexion a expiré.",
    "Ask for a new link": "Demander un nouveau lien",
    "You are signed out.": "Vous êtes déconnecté.",
    "This page is not for your role.": "Cette page n'est pas destinée à votre rôle.",
    "Error": "Erreur",
    "Back to the start": "Retour à l'accueil",
    "Page not found": "Page introuvable",
    # customer navigation
    "Overview": "Vue d'ensemble",
    "Statements": "Relevés",
    "Invoices": "Factures",
    "Vehicles": "Véhicules",
    "What would I have paid": "Combien aurais-je payé",
    # overview
    "{month}, to date": "{month}, à ce jour",
    "Amount to date, excluding VAT": "Montant à ce jour, hors TVA",
    "Including VAT": "TTC",
    "Projected for the whole month, excluding VAT": "Projection sur le mois, hors TVA",
    "Data up to {time}.": "Données jusqu'à {time}.",
    "No reading yet this month.": "Aucune mesure ce mois-ci.",
    "Some readings are still being metered.": "Des mesures sont encore en cours de traitement.",
    "Daily kilometres": "Kilomètres par jour",
    "this month": "ce mois-ci",
    "previous month": "mois précédent",
    "Day": "Jour",
    "Per vehicle": "Par véhicule",
    "Vehicle": "Véhicule",
    "Plan": "Offre",
    "Kilometres": "Kilomètres",
    "km": "km",
    "Trips": "Trajets",
    "Amount": "Montant",
    "Total": "Total",
    "no plan": "sans offre",
    "Adjustments of invoiced months that the next invoice will bill: {amount}.": "Ajustements "
    "de mois déjà facturés que la prochaine facture portera : {amount}.",
    "Chart values as a table": "Valeurs du graphique en tableau",
    "Amount, excluding VAT, against last month": "Montant hors TVA, comparé au mois dernier",
    "to date": "à ce jour",
    "projected": "projection",
    "last month, invoiced": "mois dernier, facturé",
    "Projection: each vehicle's usage so far, extrapolated to the days left in the month, "
    "priced by its plan.": "Projection : l'usage de chaque véhicule à ce jour, extrapolé aux "
    "jours restants du mois, au prix de son offre.",
    "Less than a day has elapsed: the projection is the usage so far plus the month's fees.": (
        "Moins d'un jour s'est écoulé : la projection est l'usage à ce jour plus les "
        "abonnements du mois."
    ),
    # statements
    "Statement of {month}": "Relevé de {month}",
    "Show": "Afficher",
    "Download the CSV": "Télécharger le CSV",
    "closed": "clos",
    "in progress": "en cours",
    "Charge": "Frais",
    "Quantity": "Quantité",
    "VAT": "TVA",
    "VAT rate": "Taux de TVA",
    "Excluding VAT": "Hors TVA",
    "Invoiced as {number}: {amount} including VAT.": "Facturé sous le numéro {number} : "
    "{amount} TTC.",
    "Usage measured since the invoice adds {amount} excluding VAT; the next invoice bills it "
    "as an adjustment.": "L'usage mesuré depuis la facture ajoute {amount} HT ; la prochaine "
    "facture le portera en ajustement.",
    "Spending cap discount": "Remise du plafond de dépenses",
    # invoices
    "Number": "Numéro",
    "Kind": "Type",
    "Period": "Période",
    "Issued": "Émise le",
    "Due": "Échéance",
    "Status": "Statut",
    "invoice": "facture",
    "credit_note": "avoir",
    "to pay": "à payer",
    "paid": "payée",
    "overdue": "en retard",
    "draft": "brouillon",
    "finalized": "finalisée",
    "void": "annulée",
    "no_customer": "sans client",
    "no_plan": "sans offre",
    "voided": "annulée",
    "credited": "avoir émis",
    "Total invoiced": "Total facturé",
    "Total overdue": "Total en retard",
    "Download": "Télécharger",
    "No invoice yet.": "Aucune facture pour l'instant.",
    # vehicles
    "Usage by day": "Usage par jour",
    "Cost of use this month": "Coût d'usage ce mois-ci",
    "What the use consumed of the vehicle's parts: each part's cost times the share of its "
    "life used this month.": "Ce que l'usage a consommé des pièces du véhicule : le coût de "
    "chaque pièce multiplié par la part de sa durée de vie utilisée ce mois-ci.",
    "Part": "Pièce",
    "Share of its life": "Part de sa durée de vie",
    "Wear cost": "Coût d'usure",
    "Wear of the parts": "Usure des pièces",
    "Billed, excluding VAT": "Facturé, HT",
    "Usage by month": "Usage par mois",
    "Vehicle {id}": "Véhicule {id}",
    # plans comparison
    "Your last three months priced on each public plan, with the same usage.": "Vos trois "
    "derniers mois, au prix de chaque offre publique, pour le même usage.",
    "Amounts excluding VAT, priced vehicle by vehicle.": "Montants hors TVA, calculés "
    "véhicule par véhicule.",
    "Model": "Modèle",
    "your plan": "votre offre",
    # finance
    "Finance": "Finance",
    "Drafts": "Brouillons",
    "Exports": "Exports",
    "Unbilled usage": "Usage non facturé",
    "Telemetry": "Télémétrie",
    "Customer": "Client",
    "All": "Tous",
    "Filter": "Filtrer",
    "Totals by VAT rate": "Totaux par taux de TVA",
    "Base": "Base HT",
    "Finalize": "Finaliser",
    "Finalize {name} now? It is then numbered and can no longer change.": "Finaliser {name} "
    "maintenant ? Elle reçoit alors son numéro et ne peut plus changer.",
    "Yes, finalize": "Oui, finaliser",
    "Void": "Annuler",
    "Void {name}? A credit note of all it billed is issued.": "Annuler {name} ? Un avoir de "
    "tout ce qu'elle facturait est émis.",
    "Yes, void it": "Oui, l'annuler",
    "Reason": "Motif",
    "Credit note": "Avoir",
    "Issue a credit note of an amount excluding VAT": "Émettre un avoir d'un montant hors TVA",
    "Amount excluding VAT": "Montant hors TVA",
    "Issue the credit note": "Émettre l'avoir",
    "Cancel": "Annuler l'opération",
    "Done: {name}.": "Fait : {name}.",
    "Invoices and lines (CSV)": "Factures et lignes (CSV)",
    "Invoice lines (CSV)": "Lignes de factures (CSV)",
    "FEC": "FEC",
    "Factur-X PDFs (ZIP)": "PDF Factur-X (ZIP)",
    "Nothing here.": "Rien à signaler.",
    "Numbering and collection": "Numérotation et encaissement",
    "Numbering series": "Séries de numérotation",
    "Series": "Série",
    "Last number": "Dernier numéro",
    "Last issue date": "Dernière date d'émission",
    "Payments through Stripe": "Paiements par Stripe",
    "Stripe sync failures": "Échecs de synchronisation Stripe",
    "Attempts": "Tentatives",
    "Last error": "Dernière erreur",
    "Next attempt": "Prochaine tentative",
    "Reason of rejection": "Motif du rejet",
    "Received": "Reçu le",
    "Rejected messages": "Messages rejetés",
    "Held anomalies": "Anomalies retenues",
    "Accept": "Accepter",
    "Reject": "Rejeter",
    "Detected": "Détectée le",
    "Details": "Détails",
    # operator
    "Fleets": "Flottes",
    "Fleet": "Flotte",
    "Last reading": "Dernière mesure",
    "Readings per hour": "Mesures par heure",
    "Odometer": "Compteur",
    "Battery": "Batterie",
    "Open anomalies": "Anomalies ouvertes",
    "Rejected in the last 24 hours, by reason": "Rejets des dernières 24 heures, par motif",
    "Broker credentials": "Identifiants du broker",
    "Issue a new password": "Émettre un nouveau mot de passe",
    "Revoke": "Révoquer",
    "Revoke the credentials of {id}? It can no longer connect.": "Révoquer les identifiants "
    "de {id} ? Il ne pourra plus se connecter.",
    "Yes, revoke": "Oui, révoquer",
    "Issue a new password for {id}? Its current password stops working.": "Émettre un "
    "nouveau mot de passe pour {id} ? Son mot de passe actuel cessera de fonctionner.",
    "New password of {username}, shown this once:": "Nouveau mot de passe de {username}, "
    "affiché cette seule fois :",
    "Credentials revoked.": "Identifiants révoqués.",
    "active": "actif",
    "none": "aucun",
}

CATALOGUES = {"fr": FRENCH}


def translate(language: str, message: str, **values: Any) -> str:
    """`message` in `language` (English when it has no translation), its {fields} filled."""
    text = CATALOGUES.get(language, {}).get(message, message)
    return text.format(**values) if values else text
