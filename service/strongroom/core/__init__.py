"""The core: routing, tokens, ACLs, seal state, mount and audit tables."""
