"""petrel.control"""
