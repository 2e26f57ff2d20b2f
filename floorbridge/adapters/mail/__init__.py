"""Mail: reading the circular letters that mailing lists deliver."""
