"""Headless core: volumes, DICOM import, scene, case files.

Imports nothing from Qt, OpenGL or a display (checked by import-linter).
"""
