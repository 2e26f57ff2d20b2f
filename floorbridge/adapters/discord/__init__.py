"""Discord: discord.py with slash commands and buttons."""
