"""jobs/disk"""
