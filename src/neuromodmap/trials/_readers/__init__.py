"""Private readers behind :mod:`neuromodmap.trials.io`, one module per source format."""
