"""A griffe extension: the docstrings' Sphinx roles become checked mkdocstrings cross-references.

jaxae's docstrings are Google style with reST roles for references (:func:`fit`,
:class:`~jaxae.training.state.TrainState`, as optax writes them). Rewritten to autorefs links
(``[`fit`][fit]``, resolved in the docstring's scope by ``scoped_crossrefs``), a reference to a
name that does not exist is a warning, so ``mkdocs build --strict`` fails on it.
"""

from __future__ import annotations

import re
from typing import Any

import griffe

_ROLE = re.compile(r":(?:func|class|mod|meth|attr|data|obj|exc|const):`(~?)([A-Za-z_][\w.]*)`")


# The function ``fit`` shadows its module ``jaxae.training.fit`` in ``jaxae.training`` and
# ``jaxae``; griffe's static analysis resolves both names to the module, so point at the function.
_SHADOWED = {"jaxae.fit": "jaxae.training.fit.fit", "jaxae.training.fit": "jaxae.training.fit.fit"}


def _link(match: re.Match) -> str:
    short, target = match.group(1), match.group(2)
    title = target.rsplit(".", 1)[-1] if short else target
    return f"[`{title}`][{_SHADOWED.get(target, target)}]"


class SphinxRoles(griffe.Extension):
    """Rewrites ``:role:`name``` in every docstring as a cross-reference to ``name``."""

    def on_instance(self, *, obj: griffe.Object, **kwargs: Any) -> None:
        if obj.docstring is not None:
            obj.docstring.value = _ROLE.sub(_link, obj.docstring.value)
