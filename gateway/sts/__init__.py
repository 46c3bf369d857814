"""The STS actions as pure domain code: parameters, the service that decides, and the XML documents."""
