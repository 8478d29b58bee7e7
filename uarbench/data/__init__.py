"""Datasets in R2Gen format (IU-Xray, MIMIC-CXR), the embedded synth-cxr, cleaning, tokenizer."""
