"""iCal (RFC 5545): feeds built from core objects."""
