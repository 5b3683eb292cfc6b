"""Federated statistics: a ServerApp at the hub, a ClientApp at each site."""
