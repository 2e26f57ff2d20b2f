"""adapters/web"""
