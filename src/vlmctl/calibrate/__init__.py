"""`vlmctl calibrate`: start vLLM engines on this node, read their memory lines, fit a profile's constants.

    logs   vLLM's start-up lines -> figures (the version profile's patterns)
    runs   the engine start-ups (one process each, with a timeout), and the probe that starts one
    fit    predictions at given constants, the fit, and the predicted-vs-measured table
    run    the whole command: runs -> fit -> calibration file
"""
