"""What de-identification refused, held for the project's owners: listed with the reason,
released to be processed again under the rules of now, or deleted for good."""
