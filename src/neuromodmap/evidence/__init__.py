"""neuromodmap.evidence"""
