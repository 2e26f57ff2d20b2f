"""floorbridge: bridges hybrid intergovernmental meetings into chat apps and calendars."""

__version__ = "0.1.0"
