"""petrel.policy"""
