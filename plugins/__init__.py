"""First-party plugins of recurrent, installed as the `recurrent_plugins` package.

They register through the same hooks (recurrent/hookspecs.py) a third-party plugin uses.
"""
