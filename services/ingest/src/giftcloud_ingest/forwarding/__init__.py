"""Site → hub forwarding of archived (de-identified) instances, at least once."""
