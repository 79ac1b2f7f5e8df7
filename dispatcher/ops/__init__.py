"""What operators run and read: status, explain, campaigns, imports, do-not-call files."""
