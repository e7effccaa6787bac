"""Auth methods: where tokens come from (Vault's credential backends).

``token`` is built in and always mounted at ``auth/token/``; it also holds the
token store every other auth method mints tokens through.
https://developer.hashicorp.com/vault/docs/auth
"""
