"""neuromodmap.literature"""
