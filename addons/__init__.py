"""Addons: one package per config domain; `<config dir>/custom_addons` joins this path."""
