"""petrel.ike"""
