"""The six twins: each failure mode as a quick generator writes it, one file per mode, each saying so on line 1.

Never imported by the real shop (pyproject.toml's import contract), only served by workshop/twins/urls.py.
"""
