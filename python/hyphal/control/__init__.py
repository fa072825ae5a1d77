"""The daemon's local control API: JSON lines over a Unix socket in the data dir.

:mod:`.protocol` has the framing and the error mapping, :mod:`.encoding` the
JSON form of every result and event, :mod:`.methods` what each request does
on the node, :mod:`.server` the socket server and :mod:`.client` the small
blocking client the CLI uses. :mod:`.daemon` runs a node with the server.
"""
