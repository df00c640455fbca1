"""eConsent: participants, consent document signing, paper consent, withdrawal and re-consent after amendments."""
