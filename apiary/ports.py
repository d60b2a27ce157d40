"""The port Apiary serves HTTP on by default, shared by the server and the CLI's client commands.

Kept out of ``apiary.server`` so the client side (``apiary query`` ...) can
name the server's address without importing the server.
"""

#: OTLP/HTTP's own port: the OTel SDKs' default for ``http/protobuf``, and every other API beside it.
DEFAULT_PORT = 4318
