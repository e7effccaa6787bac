"""Test helpers shared by every tier.  ``procs`` is the one module that starts
real processes (Consul agents) and stops them by process id."""
