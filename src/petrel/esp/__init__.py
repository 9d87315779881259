"""petrel.esp"""
