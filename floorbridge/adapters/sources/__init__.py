"""adapters/sources"""
