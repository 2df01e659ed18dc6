"""Who is asking: local sign-in or a trusted proxy header, signed sessions and CSRF protection."""
