"""Test helpers shared by every tier.  ``procs`` is the one package that starts
real processes (Consul agents, Strongroom nodes, HAProxy) and stops them by
process id."""
