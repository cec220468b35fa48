"""PaxDesk's GUI-free core: database, schema, validation, services, queries and Excel import/export."""

__version__ = "0.1.0"
