"""petrel.crypto"""
