"""PaxDesk's Qt user interface: windows, table models, forms, dialogs, undo commands, background tasks."""
