"""ship"""
