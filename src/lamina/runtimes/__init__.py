"""The runtime catalog: which interpreter or bootstrap runs each Lambda runtime."""
