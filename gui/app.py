"""The PaxDesk QApplication: names that QSettings files are kept under, the style, palette, fonts and icons."""

from __future__ import annotations

import os
from functools import cache
from pathlib import Path

from PySide6.QtCore import QSettings
from PySide6.QtGui import QColor, QFont, QIcon, QPalette
from PySide6.QtWidgets import QApplication

import resources

ORGANISATION = "PaxDesk"
APPLICATION = "PaxDesk"
RESOURCES = Path(resources.__file__).resolve().parent
ICONS = RESOURCES / "icons"
STYLE_SHEET = RESOURCES / "paxdesk.qss"
SCROLL_BARS = RESOURCES / "scroll_bars.qss"
# Fonts that carry Cyrillic (Қазақстан), Armenian (Հայաստան) and Latin with ə (Azərbaycan); the first one
# installed wins, the others stand in for missing glyphs.
FONT_FAMILIES = ["Noto Sans", "DejaVu Sans", "Noto Sans Armenian", "Segoe UI", "Helvetica Neue", "Arial"]


def icon(name: str) -> QIcon:
    """An icon from resources/icons by name (without .svg); an empty icon for an unknown name."""
    path = ICONS / f"{name}.svg"
    return QIcon(str(path)) if path.exists() else QIcon()


def create_application(argv: list[str] | None = None) -> QApplication:
    """The QApplication, created once and set up with PaxDesk's names, style and fonts."""
    app = QApplication.instance()
    if app is None:
        app = QApplication(argv if argv is not None else [])
    if app.property("paxdeskReady"):
        return app  # set up already: a second style sheet would re-polish every widget alive
    app.setProperty("paxdeskReady", True)
    app.setOrganizationName(ORGANISATION)
    app.setApplicationName(APPLICATION)
    app.setApplicationDisplayName(APPLICATION)
    app.setWindowIcon(icon("paxdesk"))
    app.setStyle("Fusion")
    app.setPalette(light_palette())
    font = QFont(app.font())
    font.setFamilies(FONT_FAMILIES)
    font.setPointSizeF(max(font.pointSizeF(), 10.0))
    app.setFont(font)
    app.setStyleSheet(STYLE_SHEET.read_text(encoding="utf-8") + "\n" + scroll_bar_style())
    return app


@cache
def scroll_bar_style() -> str:
    """The style sheet of PaxDesk's flat scroll bars: every scroll bar of the application has them, and the record
    table gives them to its own bars wherever it is shown (they are part of what its paint costs)."""
    return SCROLL_BARS.read_text(encoding="utf-8")


def light_palette() -> QPalette:
    """Fusion's light palette with a calmer highlight: the same look on every desktop."""
    palette = QPalette()
    colours = {
        QPalette.ColorRole.Window: "#f4f5f7",
        QPalette.ColorRole.WindowText: "#1f2933",
        QPalette.ColorRole.Base: "#ffffff",
        QPalette.ColorRole.AlternateBase: "#f7f9fb",
        QPalette.ColorRole.Text: "#1f2933",
        QPalette.ColorRole.Button: "#f4f5f7",
        QPalette.ColorRole.ButtonText: "#1f2933",
        QPalette.ColorRole.Highlight: "#2f6db5",
        QPalette.ColorRole.HighlightedText: "#ffffff",
        QPalette.ColorRole.ToolTipBase: "#ffffe8",
        QPalette.ColorRole.ToolTipText: "#1f2933",
        QPalette.ColorRole.PlaceholderText: "#8a949e",
        QPalette.ColorRole.Mid: "#c9ced4",
        QPalette.ColorRole.Dark: "#9aa3ad",
        QPalette.ColorRole.Light: "#ffffff",
        QPalette.ColorRole.Link: "#2f6db5",
    }
    for role, colour in colours.items():
        palette.setColor(role, QColor(colour))
    for role in (QPalette.ColorRole.Text, QPalette.ColorRole.WindowText, QPalette.ColorRole.ButtonText):
        palette.setColor(QPalette.ColorGroup.Disabled, role, QColor("#9aa3ad"))
    return palette


def user_settings() -> QSettings:
    """The user's interface settings (window layout, column widths, recent databases). PAXDESK_SETTINGS names
    an .ini file to use instead, e.g. for a throw-away profile."""
    override = os.environ.get("PAXDESK_SETTINGS")
    if override:
        return QSettings(override, QSettings.Format.IniFormat)
    return QSettings(ORGANISATION, APPLICATION)


def last_folder(key: str) -> str:
    """The folder a file dialog last used for `key` (e.g. "import/last_folder"), or the home folder."""
    folder = user_settings().value(key, "")
    return str(folder) if folder and Path(str(folder)).is_dir() else str(Path.home())


def remember_folder(key: str, path: str | Path) -> None:
    """Remember the folder of `path` for the next file dialog of `key`."""
    user_settings().setValue(key, str(Path(path).expanduser().parent))
