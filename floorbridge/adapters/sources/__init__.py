"""Agenda import: our YAML format, spreadsheet CSV, iCalendar (Indico, pretalx, Outlook) and frab XML."""

from .imported import ImportedAgenda
from .load import load_agenda

__all__ = ["ImportedAgenda", "load_agenda"]
