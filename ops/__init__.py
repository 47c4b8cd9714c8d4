"""fleetops remote programs: standard library only, Python >= 3.8 syntax.

Each program is one module exposing ``PROGRAM`` (an :class:`ops._contract.Program`).
They run on managed hosts from one zipapp: ``python3 fleetops.pyz <program> [args]``.
"""
