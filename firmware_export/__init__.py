"""Firmware export: a model as C99 for microcontrollers."""
