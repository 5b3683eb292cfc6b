"""Accounts: the people who sign in, their site roles, passwords, one-time links
(invitations and password resets), and the first admin."""
