"""Cloud service: ingest, storage, rules and the service layer the control room reads."""
