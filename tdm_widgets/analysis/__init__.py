"""Measurements around the masks: iCoM, PCA link, SNR, line profiles, PACBED thickness,
column displacements."""
