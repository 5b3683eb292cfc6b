"""Machine credentials: API keys (a person's, for one project) and OAuth2 clients (a site's
forwarder, a pipeline: several projects), both exchanged by the client_credentials grant
for an access token whose roles are never more than the maker holds now."""
