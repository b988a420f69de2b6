"""HTTP adapter: model-driven routing and serde, SigV4, the one error table. Translates wire to
domain calls on `control/`; never imports worker, sandbox or store internals."""
