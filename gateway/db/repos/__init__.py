"""Typed repositories over the IAM tables, one per concern, all bound to one transaction."""
