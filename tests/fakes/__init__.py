"""Local stand-ins for the chat platforms: fakes for Telegram and Discord, a real Synapse for Matrix."""
