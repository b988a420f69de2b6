"""Persistent state: the Store protocol and its SQLite implementation, encrypted code blobs, the
extracted-code cache. Imports only model and errors."""
