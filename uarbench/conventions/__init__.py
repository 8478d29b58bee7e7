"""Named scoring conventions (``--convention NAME``): see :mod:`uarbench.conventions.base`.

Importing this package registers the built-in conventions, one module each: ``r2gen`` (default),
``r2gen_compat``, ``dotspace`` / ``dotspace-lower``, ``ptb``.
"""
from uarbench.conventions import dotspace, ptb, r2gen, r2gen_compat  # noqa: F401  (register)
from uarbench.conventions.base import (CONVENTIONS, DEFAULT_CONVENTION, Convention,
                                       make_convention)

# table order (``--all-conventions``, README): the default first
ORDER = ("r2gen", "r2gen_compat", "dotspace", "dotspace-lower", "ptb")

__all__ = ["CONVENTIONS", "DEFAULT_CONVENTION", "ORDER", "Convention", "make_convention"]
