"""Function logs (data, not server logs), and later metrics and the audit trail."""
