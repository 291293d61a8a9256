"""The twin's gunicorn config: the shop's own (config/gunicorn.conf.py), without its pre_request hook."""

import runpy

_shop = runpy.run_path("config/gunicorn.conf.py")
globals().update({name: value for name, value in _shop.items() if not name.startswith("__") and name != "pre_request"})
