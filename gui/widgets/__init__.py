"""Reusable editing widgets: one editor per field kind, and the table that edits a record's linked rows."""
