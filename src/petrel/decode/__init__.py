"""petrel.decode"""
