"""What engines and auth methods are written against, below ``core`` (Vault's ``sdk/``):
``logical`` holds the request, the response, the operations and the ``Engine`` protocol."""
