"""petrel.config"""
