"""Telegram: python-telegram-bot, long polling or webhook on the app's aiohttp server."""
