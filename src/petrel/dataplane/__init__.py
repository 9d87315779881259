"""petrel.dataplane"""
