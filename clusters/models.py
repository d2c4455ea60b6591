"""Clusters and environments (cluster + namespace) that Wharf injects pull secrets into."""
