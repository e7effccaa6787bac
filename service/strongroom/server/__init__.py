"""Running a node: the node core process, gunicorn and its workers.

``strongroom server`` runs the *node core* (seal state, and with HA the lock and
service registration) in its own process and starts gunicorn as a child; each
gunicorn worker serves the Falcon app and talks to the node core through
``server.nodelink``.  In-memory storage cannot be shared between processes, so an
``inmem`` node runs one worker that holds its seal state itself.
"""
