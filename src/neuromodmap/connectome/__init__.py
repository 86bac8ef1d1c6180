"""neuromodmap.connectome"""
