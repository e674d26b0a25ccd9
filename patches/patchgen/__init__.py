"""The performer patches' generator (run ``patches/generate.py``): one module per surface part.

``surface``: the controls both surfaces offer, their receive names, defaults and ranges;
``pd``/``pd_control``/``pd_live``: Pure Data; ``maxmsp``/``max_live``: Max.
"""
