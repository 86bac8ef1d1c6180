"""neuromodmap.trials"""
