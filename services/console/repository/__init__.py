"""Where the console keeps what it owns: the staff's sessions, sealed in cookies (there are no
tables: nothing to migrate, nothing to clean up, every replica reads the same cookie)."""
