"""Outputs: the Prometheus metrics, logging and the exporter's HTTP server."""
