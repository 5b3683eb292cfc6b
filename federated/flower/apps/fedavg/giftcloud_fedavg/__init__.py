"""Federated training: a ServerApp (FedAvg) at the hub, a ClientApp at each site."""
