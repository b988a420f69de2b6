"""Code that runs inside execution environments and their zygotes.

Standard library only, importable by every supported Python (3.11-3.13) without the rest of
Lamina: zygotes run under the function's own interpreter. Nothing here imports `lamina`.
"""
