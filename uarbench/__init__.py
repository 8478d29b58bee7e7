"""uarbench: a benchmark harness for radiology report generation, with a reference UAR."""
__version__ = "0.1.0"
