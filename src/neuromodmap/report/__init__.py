"""neuromodmap.report"""
