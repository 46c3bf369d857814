"""HTTP adapters: the Query-protocol endpoint (STS and IAM actions), probes and the error middleware."""
