"""Named scoring conventions (``--convention NAME``): see :mod:`uarbench.conventions.base`.

The built-in conventions, one module each, are lazy entries of ``CONVENTIONS`` (imported when
first asked for): ``r2gen`` (default), ``r2gen_compat``, ``dotspace`` / ``dotspace-lower``, ``ptb``.
"""
from uarbench.conventions.base import (CONVENTIONS, DEFAULT_CONVENTION, Convention,
                                       make_convention)

# table order (``--all-conventions``, README): the default first
ORDER = ("r2gen", "r2gen_compat", "dotspace", "dotspace-lower", "ptb")

__all__ = ["CONVENTIONS", "DEFAULT_CONVENTION", "ORDER", "Convention", "make_convention"]
