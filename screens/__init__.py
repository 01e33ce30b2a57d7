"""Textual screens of the console (installed as lc_console.screens).

Screens are thin: they compose widgets, call lc_console.services in thread workers and show
the results. Their styles live in themes/*.tcss.
"""
